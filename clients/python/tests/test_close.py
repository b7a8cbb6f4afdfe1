"""close() with the writer away: it ends once every record without a receipt is in the spool,
not at its deadline; with a writer that answers, it waits for the receipts. close() while a log
call waits for room (on_full 'block', the writer away): the waiting record follows the others to
the spool, not lost and not counted nowhere."""

import json
import os
import signal

import pytest

from conftest import assert_clean, assert_reported_once, assert_unreached_reported, count_lines, free_port, verify

N = 2000
# Large, so that "well before the deadline" holds on a loaded machine too.
DEADLINE = 20.0

CLOSE = '''import json, logging, sys, time
import logfunnel
handler = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', close_timeout=float(sys.argv[3]),
                                     max_batch_bytes=int(sys.argv[4]))
log = logging.getLogger('closing'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(handler)
for i in range(int(sys.argv[2])):
    log.info('record %d %s', i, 'x' * 1000)
started = time.monotonic()
'''
DONE = '''
print(json.dumps({'event': 'done', 'close_s': time.monotonic() - started, 'stats': handler.client.stats}), flush=True)
'''


@pytest.mark.parametrize('close', ['handler.close()', 'logging.shutdown()',
                                   'try:\n    raise SystemExit(3)\nexcept SystemExit:\n    logging.shutdown()'],
                         ids=['close', 'shutdown', 'shutdown-while-SystemExit-is-handled'])
def test_no_writer_close_ends_once_everything_is_in_the_spool(writer_factory, run_code, close):
    """No writer: close() (and logging.shutdown(), which flushes first) returns once every record
    is in the spool, well before close_timeout (before, each waited all of it: 20 s, and 40 s for
    logging.shutdown()), and says once that no writer was reached (LOGFUNNEL_ERR_CONNECT); a
    writer started later writes each record once, in order. A close while the application
    handles an exception (a Celery prefork child closes so, in billiard's ``finally`` while
    SystemExit ends its work loop) reports the failure alone, not as raised while handling that
    exception (before: "SystemExit: 3 ... During handling of the above exception, another
    exception occurred")."""
    writer = writer_factory(start=False)
    p = run_code(CLOSE + close + DONE, writer.endpoint, str(N), str(DEADLINE), str(256 * 1024))
    done = p.wait_event('done', 3 * DEADLINE)
    assert done['close_s'] < DEADLINE / 3, done
    assert p.wait() == 0
    assert_unreached_reported(p.stderr, 1)
    assert 'During handling of the above exception' not in p.stderr and 'SystemExit' not in p.stderr, p.stderr
    stats = done['stats']
    assert (stats['records'], stats['spooled_records'], stats['confirmed'], stats['lost']) == (N, N, 0, 0), stats
    writer.start()
    writer.wait_for_lines(N)
    summary = writer.stop()
    assert (summary['records'], summary['duplicates']) == (N, 0) and count_lines(writer.file) == N
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)
    with open(writer.file, encoding='utf-8') as f:
        assert [r['seq'] for r in map(json.loads, f)] == list(range(N))


def test_a_writer_that_answers_slowly_close_waits_for_the_receipts(writer_factory, run_code):
    """The writer is connected but pauses 0.3 s after each batch: close() waits for the
    receipts (longer than spool_after), nothing goes to the spool."""
    records = 100
    writer = writer_factory(start=False)
    writer.start(slow_ms=300)
    p = run_code(CLOSE + 'handler.close()' + DONE, writer.endpoint, str(records), str(DEADLINE), str(16 * 1024))
    done = p.wait_event('done', 3 * DEADLINE)
    assert p.wait() == 0 and p.stderr == '', p.stderr
    stats = done['stats']
    assert stats['batches'] > 1 and done['close_s'] >= 0.3, done
    assert (stats['confirmed'], stats['spooled_records'], stats['spool_copies'], stats['lost']) == (records, 0, 0, 0), stats
    summary = writer.stop()
    assert (summary['records'], summary['duplicates']) == (records, 0)
    assert_clean(verify(writer.file, '--expect', str(records)), records, 1)


# Starts spam() in a thread and returns once its log call waits for room (in _make_room).
SPAM_UNTIL_WAITING = '''
def waiting_for_room(thread):
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == '_make_room':
            return True
        frame = frame.f_back
    return False

t = threading.Thread(target=spam)
t.start()
deadline = time.monotonic() + 10
while not waiting_for_room(t):
    assert time.monotonic() < deadline, 'the %s never waited for room'
    time.sleep(0.01)
'''


BLOCKED = '''import json, logging, sys, threading, time
import logfunnel
handler = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', high_water_mark=65536,
                                     max_frame_bytes=65536, max_batch_bytes=16384, close_timeout=0.5,
                                     block_timeout=30)
log = logging.getLogger('blocked'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(handler)
stop = threading.Event()
calls = [0]

def spam():
    while not stop.is_set():
        log.info('record %d %s', calls[0], 'x' * 1000)
        calls[0] += 1

''' + SPAM_UNTIL_WAITING % 'log call' + '''stop.set()        # the waiting call is the thread's last
handler.close()   # close_timeout: what is held goes to the spool while that call waits
t.join(10)
assert not t.is_alive()
print(json.dumps({'event': 'done', 'calls': calls[0], 'closed_drops': handler.closed_drops,
                  'stats': handler.client.stats}), flush=True)
'''


def test_a_record_waiting_for_room_during_close_goes_to_the_spool(writer_factory, run_code):
    writer = writer_factory(start=False)
    p = run_code(BLOCKED, writer.endpoint)
    done = p.wait_event('done')
    assert p.wait() == 0, p.stderr
    calls, stats = done['calls'], done['stats']
    # 64 KiB of ~1.1 KB lines held, then the call that waited: before, it was queued in the
    # closed producer and never sent nor spooled (records 60, spooled 59, in the file 59).
    assert calls > 50 and done['closed_drops'] == 0
    assert (stats['records'], stats['spooled_records'], stats['lost'], stats['dropped']) == (calls, calls, 0, 0)
    writer.start()
    writer.wait_for_lines(calls)
    summary = writer.stop()
    assert summary['records'] == calls and count_lines(writer.file) == calls
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', str(calls)), calls, 1)
    with open(writer.file, encoding='utf-8') as f:
        assert [r['seq'] for r in map(json.loads, f)] == list(range(calls))


NO_SPOOL_BLOCKED = '''import json, sys, threading, time
import logfunnel
client = logfunnel.Client(sys.argv[1], high_water_mark=65536, max_frame_bytes=65536, max_batch_bytes=16384,
                          close_timeout=0.5, block_timeout=float(sys.argv[2]))
outcome = []

def spam():
    try:
        for i in range(1000):
            client.send('record %d %s' % (i, 'x' * 1000))
        outcome.append('all queued')
    except logfunnel.Closed:
        outcome.append('Closed')

''' + SPAM_UNTIL_WAITING % 'send' + '''started = time.monotonic()
try:
    client.close()
except logfunnel.CloseTimeout:
    pass  # the records held are lost (no spool) and said so
t.join(60)
print(json.dumps({'event': 'done', 'released_s': time.monotonic() - started, 'outcome': outcome,
                  'stats': client.stats}), flush=True)
'''


@pytest.mark.parametrize('block_timeout', [0, 30])
def test_a_send_waiting_for_room_with_no_spool_ends_with_the_close(run_code, block_timeout):
    """A tcp endpoint nothing listens on, no spool_dir: a send() waits for room; close() gives up
    on what is held (lost, said), and the waiting send() raises Closed then. Before, the records
    lost still counted as held and the send waited on after the close: out its block_timeout
    (30 s here), or, with 0, the sender's STALL (30 s), and the process could not end meanwhile."""
    p = run_code(NO_SPOOL_BLOCKED, 'tcp://127.0.0.1:%d' % free_port(), str(block_timeout))
    done = p.wait_event('done', timeout=90)
    assert p.wait() == 0, p.stderr
    assert done['outcome'] == ['Closed'] and done['released_s'] < 10, done
    stats = done['stats']
    assert stats['records'] > 50 and stats['lost'] == stats['records'] and stats['spooled_records'] == 0, stats
    assert 'LOGFUNNEL_ERR_CLOSE_TIMEOUT: close deadline: %d records without a receipt lost' % stats['records'] in p.stderr, p.stderr


STOPPED = '''import json, logging, os, signal, sys, time
import logfunnel
handler = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', close_timeout=float(sys.argv[3]),
                                     max_batch_bytes=16384)
log = logging.getLogger('stopped'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(handler)
log.info('record 0')
handler.flush()  # connected: the writer has answered
os.kill(int(sys.argv[4]), signal.SIGSTOP)  # still connected, no longer answering
for i in range(1, int(sys.argv[2])):
    log.info('record %d %s', i, 'x' * 1000)
started = time.monotonic()
'''


@pytest.mark.parametrize('close', ['handler.close()', 'logging.shutdown()'])
def test_a_stopped_writer_counts_as_away_close_ends_once_everything_is_in_the_spool(writer_factory, run_code, close):
    """The writer stopped (SIGSTOP: its connections stay up, nothing answers): as Node's producers
    judge it (a heartbeat unanswered for spool_after while batches wait), the writer is away, so
    close() ends once every record without a receipt is in the spool instead of waiting out
    close_timeout (before: all of it, 20 s; 40 s for logging.shutdown(), which flushes first).
    Resumed, the writer takes the spool and what was in its socket: each record once, in order.
    The close says so, once, as Node's close() does (before, nothing: tests/test_close_reports.py)."""
    writer = writer_factory()
    pid = writer.proc.proc.pid
    try:
        p = run_code(STOPPED + close + DONE, writer.endpoint, str(N), str(DEADLINE), str(pid))
        done = p.wait_event('done', 3 * DEADLINE)
        assert done['close_s'] < DEADLINE / 3, done
        assert p.wait() == 0, p.stderr
        assert p.stderr == ('logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: close ended before its %d ms deadline: the writer '
                            'does not answer: %d records without a receipt went to the spool in %s.spool, where the '
                            'writer ingests them\n' % (DEADLINE * 1000, N - 1, writer.endpoint[len('ipc://'):])), p.stderr
    finally:
        os.kill(pid, signal.SIGCONT)
    stats = done['stats']
    assert (stats['records'], stats['confirmed'], stats['spooled_records'], stats['lost']) == (N, 1, N - 1, 0), stats
    writer.wait_for_lines(N)
    summary = writer.stop()
    assert summary['records'] == N and count_lines(writer.file) == N, summary
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)
    with open(writer.file, encoding='utf-8') as f:
        assert [r['seq'] for r in map(json.loads, f)] == list(range(N))


STOPPED_FROM_START = '''import json, logging, sys, time
import logfunnel
started = time.monotonic()  # close_s: from before the handler is made until its close() ends
handler = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', close_timeout=float(sys.argv[3]))
log = logging.getLogger('stopped'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(handler)
for i in range(int(sys.argv[2])):
    log.info('record %d', i)
handler.close()
'''


def test_a_writer_there_but_not_answering_gets_a_second_before_a_close_reports_it(writer_factory, run_code):
    """The writer's socket accepts the connection but nothing answers the handshake (here it is
    stopped, SIGSTOP, from before the producer starts; a loaded machine or a writer still
    starting look the same at first): close() does not end at spool_after with a report, as it
    did (LOGFUNNEL_ERR_HANDSHAKE after ~100 ms, and under load LOGFUNNEL_ERR_CONNECT for a
    writer that was up), but gives the writer a second to answer or to show why not (a refused
    connect, a failed handshake end it at once), then reports it once, everything in the spool."""
    writer = writer_factory()
    pid = writer.proc.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        p = run_code(STOPPED_FROM_START + DONE, writer.endpoint, str(N), str(DEADLINE))
        done = p.wait_event('done', 3 * DEADLINE)
        assert p.wait() == 0
    finally:
        os.kill(pid, signal.SIGCONT)
    assert 1.0 <= done['close_s'] < DEADLINE / 3, done
    assert_reported_once(p.stderr, 'LOGFUNNEL_ERR_HANDSHAKE')
    stats = done['stats']
    assert (stats['records'], stats['confirmed'], stats['spooled_records'], stats['lost']) == (N, 0, N, 0), stats
    writer.wait_for_lines(N)
    summary = writer.stop()
    assert summary['records'] == N and count_lines(writer.file) == N, summary
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)


# The application's SIGTERM handler calls logging.shutdown() (as the README advises for an
# application that has its own), and SIGTERM comes while the main thread is inside close(),
# waiting for the receipts of a writer that has stopped answering (spool_after 2 s: not judged
# away yet). The handler then ends the process by sys.exit(0).
CLOSE_IN_A_SIGNAL_HANDLER = '''import json, logging, os, signal, sys, threading
import logfunnel
endpoint, n, writer_pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
log = logging.getLogger('term'); log.setLevel(logging.INFO); log.propagate = False
handler = logfunnel.LogfunnelHandler(endpoint, seq_key='seq', spool_after=2)
log.addHandler(handler)

def on_term(signum, frame):
    inside = []
    while frame is not None:
        inside.append(frame.f_code.co_name)
        frame = frame.f_back
    print(json.dumps({'event': 'term', 'inside_close': '_close' in inside}), flush=True)
    logging.shutdown()
    print(json.dumps({'event': 'shut down', 'stats': handler.client.stats}), flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
for i in range(n):
    log.info('before %d', i)
handler.flush()
os.kill(writer_pid, signal.SIGSTOP)  # still connected, no longer answering
for i in range(n):
    log.info('after %d', i)
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
handler.close()
'''


def test_logging_shutdown_from_a_signal_handler_inside_close(writer_factory, run_code):
    # Before, the handler's close waited for the close it had interrupted, in the same thread:
    # for ever (the process ignored SIGTERM from then on too; only SIGKILL ended it). A
    # FileHandler's close is re-entrant there.
    writer = writer_factory()
    pid = writer.proc.proc.pid
    n = 100
    try:
        p = run_code(CLOSE_IN_A_SIGNAL_HANDLER, writer.endpoint, str(n), str(pid))
        term = p.wait_event('term', 30)
        assert term['inside_close'], term  # the signal came while close() waited
        shut = p.wait_event('shut down', 30)
        assert p.wait(30) == 0, p.stderr
    finally:
        os.kill(pid, signal.SIGCONT)
    assert shut['stats']['confirmed'] == n, shut
    # the rest: in the spool (the close the handler interrupted spools them as the handler's
    # sys.exit() goes through it), or confirmed once the writer is back
    writer.wait_for_lines(2 * n)
    writer.stop(spool_taken=True)
    assert_clean(verify(writer.file, '--expect', str(2 * n)), 2 * n, 1)
