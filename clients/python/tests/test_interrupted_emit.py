"""An exception raised by a signal handler inside a log call (KeyboardInterrupt from Ctrl-C, or
any exception of the application's handler) ends that emit: the records the signal handler
logged meanwhile (deferred, to follow the interrupted one) are still sent, by the next emit,
flush(), close() or the end of the process; each once, in order, with no seq taken twice."""

import json
import signal

import pytest

from conftest import assert_clean, count_lines, verify

INTERRUPTED = '''import json, logging, os, signal, sys, threading
import logfunnel
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq')
log = logging.getLogger('ki'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)

def on_usr1(signum, frame):
    log.info('from the signal handler')  # deferred: the emit it interrupted is running
    raise KeyboardInterrupt              # ... and ends that emit

signal.signal(signal.SIGUSR1, on_usr1)

class Kick:
    def __str__(self):
        os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs here, as the emit formats the record
        return 'kick'

n = int(sys.argv[2])
for i in range(n):
    log.info('record %d', i)
try:
    log.info('interrupted %s', Kick())
    raise AssertionError('no KeyboardInterrupt')
except KeyboardInterrupt:
    pass
# No record is logged from here on.
end = sys.argv[3]
if end == 'flush':
    h.flush()
    print(json.dumps({'event': 'flushed', 'stats': h.client.stats}), flush=True)
    threading.Event().wait()  # killed by the test: no close(), no exit hook
elif end == 'close':
    h.close()
    print(json.dumps({'event': 'closed', 'stats': h.client.stats}), flush=True)
    os._exit(0)  # no exit hook
elif end == 'sigterm':
    os.kill(os.getpid(), signal.SIGTERM)  # what is held goes to the spool, then the process ends by it
    threading.Event().wait()
'''


@pytest.mark.parametrize('end', ['flush', 'close', 'exit', 'sigterm'])
def test_records_deferred_by_an_interrupted_emit_are_sent(writer_factory, run_code, end):
    """Before, the signal handler's record waited for a next emit that never came: neither sent
    nor spooled (500 of 501 records in the file). At SIGTERM it follows what is held into the
    spool."""
    writer = writer_factory()
    n = 500
    p = run_code(INTERRUPTED, writer.endpoint, str(n), end)
    if end == 'flush':
        stats = p.wait_event('flushed')['stats']
        assert (stats['records'], stats['confirmed']) == (n + 1, n + 1)
        p.proc.kill()
        assert p.wait() == -signal.SIGKILL
    elif end == 'sigterm':
        assert p.wait() == -signal.SIGTERM
    else:
        if end == 'close':
            assert p.wait_event('closed')['stats']['confirmed'] == n + 1
        assert p.wait() == 0
    assert p.stderr == ''
    writer.wait_for_lines(n + 1)
    summary = writer.stop()
    assert summary['records'] == n + 1 and count_lines(writer.file) == n + 1
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', str(n + 1)), n + 1, 1)
    with open(writer.file, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    assert [r['seq'] for r in records] == list(range(n + 1))
    assert records[-1]['msg'] == 'from the signal handler'


RANDOM = '''import json, logging, os, signal, sys, threading, time
import logfunnel
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq')
log = logging.getLogger(); log.setLevel(logging.INFO)
log.addHandler(h)
caught, handled, raised = [0], [0], [0]
emit = logfunnel.LogfunnelHandler.emit.__code__

def on_usr1(signum, frame):
    caught[0] += 1
    try:
        log.info('from the signal handler %d', caught[0])
        # Raised only where it lands inside an emit (at any point of it): elsewhere in the loop
        # below it would end the script, not a log call.
        while frame is not None and frame.f_code is not emit:
            frame = frame.f_back
        if frame is not None:
            raised[0] += 1
            raise KeyboardInterrupt
    finally:
        handled[0] += 1

signal.signal(signal.SIGUSR1, on_usr1)
kicks = int(sys.argv[2])

def kicker():
    deadline = time.monotonic() + 60
    for k in range(kicks):
        os.kill(os.getpid(), signal.SIGUSR1)
        while handled[0] <= k and time.monotonic() < deadline:  # one at a time: none lands in the handler
            time.sleep(0.0002)

t = threading.Thread(target=kicker)
t.start()
main = interrupted = 0
while t.is_alive():
    try:
        log.info('main %d', main)
    except KeyboardInterrupt:
        interrupted += 1
    main += 1
t.join()
print(json.dumps({'event': 'done', 'caught': caught[0], 'raised': raised[0], 'interrupted': interrupted,
                  'records': h.client.stats['records']}), flush=True)
'''


def test_keyboard_interrupts_anywhere_in_emit_lose_and_double_nothing(writer_factory, run_code):
    """SIGUSR1 sent 300 times while the main thread logs; the handler logs, then raises
    KeyboardInterrupt wherever it lands in an emit: before the client has the line or after. Every
    signal handler's record is in the file, and every line the client took, each once, with one
    seq each (before, one taken after the line was queued was used again by the next record:
    duplicates; and the last deferred record was lost)."""
    writer = writer_factory()
    kicks = 300
    p = run_code(RANDOM, writer.endpoint, str(kicks))
    done = p.wait_event('done', timeout=90)
    assert p.wait() == 0 and p.stderr == ''
    assert done['caught'] == kicks and done['raised'] == done['interrupted'] > 0, done
    total = done['records']
    writer.wait_for_lines(total)
    summary = writer.stop()
    assert summary['records'] == total and count_lines(writer.file) == total
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', str(total)), total, 1)
    with open(writer.file, encoding='utf-8') as f:
        from_handler = [r['msg'] for r in map(json.loads, f) if r['msg'].startswith('from the signal handler')]
    assert sorted(from_handler) == sorted('from the signal handler %d' % k for k in range(1, kicks + 1))
