"""While the spool holds batches the writer has not taken: under continuous logging with
on_full='spool', the writer away then back, logging goes back to the socket once the writer has
taken them; with the writer stopped but connected, 'block' waits once, not at each
high_water_mark."""

import os
import signal

from conftest import assert_clean, count_lines, verify

BACK = '''import json, logging, sys, time
import logfunnel
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', on_full='spool', high_water_mark=8 * 1024 * 1024,
                               max_batch_bytes=4096, max_frame_bytes=65536)
log = logging.getLogger('s'); log.addHandler(h); log.setLevel(logging.INFO); log.propagate = False
stats = h.client.stats
i = 0
while stats['spooled'] == 0:  # the writer away: past high_water_mark, what is held goes to the spool
    log.info('record %d', i)
    i += 1
print(json.dumps({'event': 'spooling'}), flush=True)
# Logging goes on; the test starts the writer. Once it has taken the spool, records go through
# the socket again (their receipts count in 'confirmed'; spooled records count in 'spooled_records').
deadline = time.monotonic() + 20
while stats['confirmed'] < 10000 and time.monotonic() < deadline:
    log.info('record %d', i)
    i += 1
back = dict(stats)
for _ in range(50000):  # and on, with the writer up: none of these goes to the spool
    log.info('record %d', i)
    i += 1
# Every receipt, however long a busy machine takes (h.flush() gives up after close_timeout, 10 s:
# 22,144 of 320,252 records were still without one beside 3 other test runs on 2 cores).
h.client.flush(120)
print(json.dumps({'event': 'done', 'logged': i, 'back': back, 'stats': stats}), flush=True)
'''


def test_on_full_spool_goes_back_to_the_socket_once_the_writer_has_taken_the_spool(writer_factory, run_code):
    """on_full 'spool' under continuous logging, the writer away then back: once the writer has
    taken what went to the spool, new batches go through the socket again (before, each new
    batch followed the spooled ones into the spool for as long as one of those had no receipt,
    which under continuous logging lasted until a lucky pause: seconds, or for ever)."""
    writer = writer_factory(start=False)
    p = run_code(BACK, writer.endpoint)
    p.wait_event('spooling', timeout=60)
    writer.start()
    done = p.wait_event('done', timeout=60)
    assert p.wait() == 0 and p.stderr == ''
    back, stats, logged = done['back'], done['stats'], done['logged']
    assert back['confirmed'] >= 10000, back  # through the socket within 20 s of the writer's start
    # Nothing went to the spool after that, and every record has a receipt.
    assert stats['spooled_records'] == back['spooled_records'] and stats['confirmed'] + stats['spooled_records'] == logged, done
    assert (stats['records'], stats['dropped'], stats['lost']) == (logged, 0, 0)
    writer.wait_for_lines(logged)
    summary = writer.stop()
    assert summary['records'] == logged and count_lines(writer.file) == logged
    assert summary['rejected'] == {}, summary  # nothing sent ahead of the spool
    assert_clean(verify(writer.file, '--expect', str(logged)), logged, 1)


STOPPED = '''import json, logging, os, signal, sys, time
import logfunnel
from logfunnel import _producer
timeouts = []  # each time a log call's wait for room ran out
spool_or_overflow = _producer._Producer._spool_or_overflow

def counted(self):
    timeouts.append(time.monotonic())
    return spool_or_overflow(self)

_producer._Producer._spool_or_overflow = counted
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', high_water_mark=256 * 1024, block_timeout=0.3,
                               close_timeout=0.2, max_batch_bytes=16384, max_frame_bytes=65536)
log = logging.getLogger('s'); log.addHandler(h); log.setLevel(logging.INFO); log.propagate = False
n = int(sys.argv[2])
log.info('%d %s', 0, 'x' * 1000)
h.flush()  # connected: the writer has answered
os.kill(int(sys.argv[3]), signal.SIGSTOP)  # still connected, no longer answering
for i in range(1, n):
    log.info('%d %s', i, 'x' * 1000)
h.close()
print(json.dumps({'event': 'done', 'timeouts': len(timeouts), 'stats': h.client.stats}), flush=True)
'''


def test_on_full_block_spools_on_after_one_block_timeout_with_the_writer_stopped(writer_factory, run_code):
    """The writer stopped (SIGSTOP: still connected, not answering), on_full 'block': one log call
    waits block_timeout, then what is held goes to the spool and logging goes on as with 'spool'
    until the writer has taken it: the batches that follow never make a log call wait again."""
    writer = writer_factory()
    n = 3000  # about 12 times high_water_mark
    try:
        p = run_code(STOPPED, writer.endpoint, str(n), str(writer.proc.proc.pid))
        done = p.wait_event('done', timeout=60)
        assert p.wait() == 0 and p.stderr == ''
    finally:
        os.kill(writer.proc.proc.pid, signal.SIGCONT)
    stats = done['stats']
    assert done['timeouts'] == 1, done
    assert (stats['records'], stats['dropped'], stats['lost']) == (n, 0, 0)
    writer.wait_for_lines(n)
    summary = writer.stop()
    assert summary['records'] == n and count_lines(writer.file) == n
    assert_clean(verify(writer.file, '--expect', str(n)), n, 1)
