"""Logs GREENLETS x PER records through LogfunnelHandler from green threads, then ends (its exit
hooks send the rest). argv: endpoint, 'gevent' or 'eventlet', 'before' (patched before
`import logfunnel`) or 'after' (the handler made and a record logged first, then patched), PER.
A ticker green thread measures the longest the hub went without running it meanwhile. Prints
{"event":"done","records":<logged>,"max_gap":<s>}."""

import json
import sys
import time

endpoint, library, order, per = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
GREENLETS = 50


def patch():
    from green_patch import patch as patch_library
    patch_library(library)


if order == 'before':
    patch()

import logging  # noqa: E402

import logfunnel  # noqa: E402

log = logging.getLogger('green')
log.addHandler(logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq'))
log.setLevel(logging.INFO)
log.propagate = False
logged = 0
if order == 'after':
    log.info('before the patch')  # the sender started before the patch, too
    logged += 1
    patch()

if library == 'gevent':
    import gevent
    spawn, sleep = gevent.spawn, gevent.sleep

    def join(threads):
        gevent.joinall(threads, raise_error=True)
else:
    import eventlet
    spawn, sleep = eventlet.spawn, eventlet.sleep

    def join(threads):
        for thread in threads:
            thread.wait()

running = True
max_gap = 0.0


def ticker():
    global max_gap
    last = time.monotonic()
    while running:
        sleep(0.005)
        now = time.monotonic()
        max_gap = max(max_gap, now - last)
        last = now


def work(g):
    for i in range(per):
        log.info('greenlet %d record %d', g, i)
        if i % 10 == 9:
            sleep(0)  # the others log meanwhile


tick = spawn(ticker)
join([spawn(work, g) for g in range(GREENLETS)])
sleep(0.3)  # the hub idles while the sender sends: it must not be held meanwhile
running = False
join([tick])
print(json.dumps({'event': 'done', 'records': logged + GREENLETS * per, 'max_gap': round(max_gap, 3)}), flush=True)
