"""A Python soak producer (bench/soak.ts starts 4 of them): logs ``rate`` records/s in 10 ms
ticks through one long-lived ``LogfunnelHandler``, and every ``destination_every_ms`` makes a
new logger with a handler of its own, logs 20 records through it, then closes the handler or
just drops it (alternately). Every record has ``src`` (one per handler) and ``seq`` (0, 1, 2, ...
per src, given by this script: a new handler takes up the sequence its predecessor left, which
``seq_key`` numbers per process), for ``logfunnel verify --key src``.

Ends on "stop" on stdin (close, exit 0) or "exit" (``sys.exit(0)`` without closing: the
interpreter's exit hooks run), printing ``{"event":"done","how":...,"counts":{src: n}}``.

Usage: python3 bench/python/soak_producer.py '<json: endpoint, tag, rate, destination_every_ms>'
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import sys
import threading
import time
from typing import Dict

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'clients', 'python'))
from logfunnel import LogfunnelHandler  # noqa: E402

TICK = 0.01
RECORDS_PER_DESTINATION = 20

params = json.loads(sys.argv[1])
TEXT = base64.b64encode(os.urandom(12288)).decode('ascii')
counts: Dict[str, int] = {}
command = {'what': ''}


def payload() -> str:
    r = random.random()
    n = 100 + random.randrange(300) if r < 0.7 else 400 + random.randrange(1100) if r < 0.95 else 1500 + random.randrange(2597)
    at = random.randrange(len(TEXT) - n)
    return TEXT[at:at + n]


def new_logger(name: str) -> 'tuple[logging.Logger, LogfunnelHandler]':
    log = logging.Logger(name)   # not logging.getLogger: that registry keeps every logger for good
    handler = LogfunnelHandler(params['endpoint'])
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return log, handler


def log_one(log: logging.Logger, src: str) -> None:
    seq = counts.get(src, 0)
    log.info('r', extra={'src': src, 'seq': seq, 'payload': payload()})
    counts[src] = seq + 1


def report(how: str) -> None:
    sys.stdout.write(json.dumps({'event': 'done', 'how': how, 'pid': os.getpid(), 'counts': counts}) + '\n')
    sys.stdout.flush()


def read_stdin() -> None:
    for line in sys.stdin:
        command['what'] = line.strip()
        return


def main() -> None:
    threading.Thread(target=read_stdin, daemon=True).start()
    main_log, main_handler = new_logger('soak')
    main_src = '%s.%d.main' % (params['tag'], os.getpid())
    per_tick = params['rate'] * TICK
    owed = 0.0
    destinations = 0
    next_destination = time.monotonic() + params['destination_every_ms'] / 1000
    next_tick = time.monotonic()
    while True:
        if command['what'] == 'exit':
            report('exit without close')
            sys.exit(0)
        if command['what'] == 'stop':
            main_handler.close()
            report('stop')
            return
        owed += per_tick
        while owed >= 1:
            log_one(main_log, main_src)
            owed -= 1
        now = time.monotonic()
        if now >= next_destination:
            next_destination = now + params['destination_every_ms'] / 1000
            src = '%s.%d.d%d' % (params['tag'], os.getpid(), destinations)
            log, handler = new_logger(src)
            for _ in range(RECORDS_PER_DESTINATION):
                log_one(log, src)
            if destinations % 2 == 0:
                handler.close()
            destinations += 1
            del log, handler
        next_tick += TICK
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_tick = time.monotonic()


if __name__ == '__main__':
    main()
