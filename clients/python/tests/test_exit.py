"""The shortest programs people write: log, then just end (no close(), no flush()), and the
sender thread failing under them. Every record reaches the file, nothing is printed."""

import time

import pytest

from conftest import COUNT_SESSION_FAILURES, TAKE_ALL_DESCRIPTORS, assert_clean, assert_reported_once, assert_unreached_reported, count_lines, verify

BURST = '''import logging, sys
import logfunnel
log = logging.getLogger('burst'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq'))
for i in range(int(sys.argv[2])):
    log.info('x' * int(sys.argv[3]))
'''


def test_a_burst_then_the_end_of_the_script(writer_factory, run_code):
    # Most of the burst is still queued when the interpreter starts to exit: the exit hook sends
    # it in large batches, after pyzmq's own exit hooks have run.
    writer = writer_factory()
    n = 60_000
    p = run_code(BURST, writer.endpoint, str(n), '200')
    assert p.wait() == 0
    assert p.stderr == ''
    writer.wait_for_lines(n)
    summary = writer.stop()
    assert summary['records'] == n and count_lines(writer.file) == n
    assert verify(writer.file, '--expect', str(n))['lines'] == n


FAULTS = '''import json, logging, os, signal, sys, time
import logfunnel, logfunnel._sender as sender
endpoint, n, fail_at = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].split(',')]
sends = 0

class FaultyPush:
    """The PUSH socket, with an exception (as a bug would raise) at the sends listed in fail_at."""
    def __init__(self, sock):
        self._sock = sock
    def __getattr__(self, name):
        return getattr(self._sock, name)
    def send_multipart(self, *args, **kwargs):
        global sends
        sends += 1
        if sends in fail_at:
            raise RuntimeError('a fault at send %d' % sends)
        return self._sock.send_multipart(*args, **kwargs)

if sys.argv[4] == 'until-broken':
    sender.RESTART_DELAY = 0.005  # the pauses between sessions are not what this case is about
open_sockets = sender.open_sockets
sender.open_sockets = lambda *a: (lambda push, *rest: (FaultyPush(push), *rest))(*open_sockets(*a))
ending = sys.argv[5] if len(sys.argv) > 5 else 'close'  # close, sigterm, or close-no-spool
kept = {'spool_dir': os.path.join(sys.argv[6], 'spool')} if ending == 'close-no-spool' else {}  # under a regular file
if sys.argv[4] == 'at-once':  # the writer is never judged away (no PONG for spool_after, 0.1 s) on a loaded
    kept['spool_after'] = 5.0  # machine: then every batch rightly goes to the spool and none is confirmed
client = logfunnel.Client(endpoint, max_batch_bytes=4096, batch_delay=0, **kept)
for i in range(n // 2):
    client.send(json.dumps({'seq': i, 'msg': 'y' * 100}))
if sys.argv[4] == 'until-broken':  # the second half only once the sender has given up
    while not client.broken:
        time.sleep(0.01)
for i in range(n // 2, n):
    client.send(json.dumps({'seq': i, 'msg': 'y' * 100}))
if ending == 'sigterm':  # a service manager's stop, with no close()
    print(json.dumps({'event': 'ending', 'stats': client.stats}), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
began = time.monotonic()
try:
    client.close()
    raised = None
except logfunnel.LogfunnelError as err:
    raised = str(err)
print(json.dumps({'event': 'done', 'stats': client.stats, 'seconds': time.monotonic() - began, 'raised': raised}), flush=True)
'''


def test_the_sender_thread_goes_on_after_a_fault(writer_factory, run_code):
    writer = writer_factory()
    n = 5_000
    p = run_code(FAULTS, writer.endpoint, str(n), '3,40', 'at-once')
    done = p.wait_event('done')
    assert p.wait() == 0
    # Each fault is reported once with its code; the records it held are sent again.
    assert p.stderr.count('LOGFUNNEL_ERR_SENDER_FAILED: the sender failed (') == 2, p.stderr
    assert p.stderr.count('LOGFUNNEL_ERR_SENDER_FAILED') == 2
    assert 'a fault at send 3' in p.stderr and 'a fault at send 40' in p.stderr
    assert done['stats']['confirmed'] == n and done['stats']['lost'] == 0, (done, p.stderr)
    writer.wait_for_lines(n)
    summary = writer.stop()
    assert summary['records'] == n and count_lines(writer.file) == n
    # The Client's raw lines carry no pid: verify counts them (an explicit --key pid is refused).
    assert verify(writer.file, '--expect', str(n))['lines'] == n


def test_a_sender_that_keeps_failing_spools_and_gives_up(writer_factory, run_code):
    # Every send from the 2nd on fails: after five restarts the sender gives up, what it held
    # (the first half, but for its first batch) goes to the spool, which the writer ingests;
    # what is logged after that (the second half) is dropped and counted, never silently.
    writer = writer_factory()
    n = 2_000
    p = run_code(FAULTS, writer.endpoint, str(n), ','.join(str(k) for k in range(2, 200)), 'until-broken')
    done = p.wait_event('done')
    assert p.wait() == 0
    assert p.stderr.count('LOGFUNNEL_ERR_SENDER_FAILED: the sender failed (') == 6, p.stderr
    assert p.stderr.count('it starts again') == 5 and p.stderr.count('too many failures') == 1
    stats = done['stats']
    assert stats['lost'] == n // 2
    assert stats['confirmed'] + stats['spooled_records'] == n // 2 and stats['spooled_records'] > 0
    assert ('LOGFUNNEL_ERR_SENDER_FAILED: %d records dropped with no sender to take them' % (n // 2)) in p.stderr
    kept = n // 2
    writer.wait_for_lines(kept)
    summary = writer.stop()
    assert summary['records'] == kept and count_lines(writer.file) == kept


def test_a_sender_that_gave_up_before_a_fatal_signal_says_what_it_dropped(writer_factory, run_code):
    # The sender gives up (the first half spooled), the second half is dropped and counted, then
    # SIGTERM ends the process (no close()): the end spools what is held and the process ends by
    # the signal. The 1000 records dropped were said nowhere (close() and the interpreter's exit
    # say them; the signal's end did not): silent loss. Now the signal's end says them too.
    writer = writer_factory()
    n = 2_000
    p = run_code(FAULTS, writer.endpoint, str(n), ','.join(str(k) for k in range(2, 200)), 'until-broken', 'sigterm')
    ending = p.wait_event('ending')
    assert p.wait() == -15
    stats = ending['stats']
    assert stats['lost'] == n // 2 and stats['confirmed'] + stats['spooled_records'] == n // 2, stats
    assert p.stderr.count('too many failures') == 1, p.stderr
    assert p.stderr.count('LOGFUNNEL_ERR_SENDER_FAILED: %d records dropped with no sender to take them' % (n // 2)) == 1, p.stderr
    writer.wait_for_lines(n // 2)
    summary = writer.stop(spool_taken=True)
    assert summary['records'] == n // 2 and count_lines(writer.file) == n // 2


def test_a_sender_that_gave_up_with_no_spool_ends_close_at_once_and_says_why(writer_factory, run_code, tmp_path):
    # The sender gives up and its spool cannot be written (its directory is under a regular file):
    # close() ends at once and raises for the 1000 records it holds, but its report said 'close
    # took longer than 10.0 s' and 'close deadline', a deadline it never waited for. Now it says
    # that the sender gave up; the counts add up to the 2000 logged, none in the file. Every send
    # fails, the first too: a first batch sent whose receipt the give-up outran reached the file
    # while counted lost (33 of them in one CI run).
    writer = writer_factory()
    n = 2_000
    (tmp_path / 'a-file').write_text('')
    p = run_code(FAULTS, writer.endpoint, str(n), ','.join(str(k) for k in range(1, 200)), 'until-broken',
                 'close-no-spool', str(tmp_path / 'a-file'))
    done = p.wait_event('done')
    assert p.wait() == 0
    stats = done['stats']
    assert done['seconds'] < 2, done
    assert stats['lost'] == n and stats['spooled_records'] == 0 and stats['confirmed'] == 0, done
    assert done['raised'] == ("LOGFUNNEL_ERR_CLOSE_TIMEOUT: close, the sender gave up (it failed too often): "
                              "%d records without a receipt lost, never sent (the spool could not be written: ENOTDIR: "
                              "Not a directory: '%s')" % (n // 2, tmp_path / 'a-file' / 'spool')), done
    assert ('LOGFUNNEL_ERR_CLOSE_TIMEOUT: close, the sender gave up (it failed too often): %d records without '
            'a receipt lost' % (n // 2)) in p.stderr, p.stderr
    assert 'took longer than' not in p.stderr and 'deadline' not in p.stderr, p.stderr
    assert p.stderr.count('LOGFUNNEL_ERR_SENDER_FAILED: %d records dropped with no sender to take them' % (n // 2)) == 1, p.stderr
    assert writer.stop()['records'] == 0 and count_lines(writer.file) == 0


NO_THREAD = '''import json, logging, sys, time
import logfunnel, logfunnel._native
start = logfunnel._native.Thread.start  # the package's threads are real OS threads of its own (_native)
def refuse(thread):
    if thread.name == 'logfunnel-sender':
        raise RuntimeError("can't start new thread")  # what a pids limit or no memory gives
    start(thread)
logfunnel._native.Thread.start = refuse
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', high_water_mark=1024 * 1024)
log = logging.getLogger('t'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
began = time.monotonic()
for i in range(int(sys.argv[2])):
    log.info('x' * 200)
print(json.dumps({'event': 'done', 'seconds': time.monotonic() - began, 'stats': h.client.stats}), flush=True)
'''


def test_no_sender_thread_could_be_made_nothing_waits_for_it(writer_factory, run_code):
    # Past high_water_mark a log call used to wait close_timeout (10 s) for receipts from a
    # sender that did not exist, record after record: the program hung. Now the failure is
    # reported once, nothing waits, and the records go to the spool (past the mark, and at the
    # end), from which the writer takes every one.
    writer = writer_factory()
    n = 20_000
    p = run_code(NO_THREAD, writer.endpoint, str(n))
    done = p.wait_event('done')
    assert p.wait() == 0
    assert done['seconds'] < 5 and done['stats']['lost'] == 0 and done['stats']['dropped'] == 0, done
    assert done['stats']['spooled_records'] > 0, done  # past high_water_mark, while logging
    assert p.stderr.count('the sender could not start (RuntimeError: can\'t start new thread)') == 1, p.stderr
    assert 'records dropped' not in p.stderr, p.stderr
    writer.wait_for_lines(n)
    assert writer.stop()['records'] == n
    assert_clean(verify(writer.file, '--expect', str(n)), n, 1)


LATE = '''import atexit, logging, sys, threading
go, gone = threading.Event(), threading.Event()
atexit.register(lambda: (go.set(), gone.wait(10)))  # registered first: runs last, after logging's and logfunnel's
import logfunnel
log = logging.getLogger('late'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq'))

def late():
    go.wait()
    for i in range(10):
        log.info('after every handler was closed %d', i)
    gone.set()

threading.Thread(target=late, daemon=True).start()
for i in range(1000):
    log.info('before the end %d', i)
'''


def test_records_logged_after_the_exit_hooks_are_spooled(writer_factory, run_code):
    # A daemon thread still logging once logging.shutdown() and the exit hook have closed the
    # handler: its records go to the spool after the others (before: dropped, reported once on
    # stderr); nothing is printed, and the writer ingests them once the process has ended.
    writer = writer_factory()
    p = run_code(LATE, writer.endpoint)
    assert p.wait() == 0
    assert p.stderr == ''
    writer.wait_for_lines(1010)
    summary = writer.stop()
    assert summary['records'] == 1010
    assert_clean(verify(writer.file, '--expect', '1010'), 1010, 1)


AWAY = '''import logging, sys, time
import logfunnel
log = logging.getLogger('away'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', close_timeout=60))
for i in range(3):
    log.info('while the writer is away %d', i)
print(time.monotonic(), flush=True)
'''


def test_a_script_ends_after_linger_when_the_writer_is_away(writer_factory, run_code):
    # No writer: at the end of the script receipts are awaited `linger` (1 s), not close_timeout
    # (60 s here), then the records go to the spool, from which the writer, once started, takes
    # them; the close says once that no writer was reached.
    writer = writer_factory(start=False)
    p = run_code(AWAY, writer.endpoint)
    code = p.wait(timeout=30)
    ended = time.monotonic()
    assert code == 0
    assert_unreached_reported(p.stderr, 1)
    assert ended - float(p.stdout[0]) < 30  # close_timeout would be 60 s
    assert len(writer.spool_files()) == 1
    writer.start()
    writer.wait_for_lines(3)
    summary = writer.stop()
    assert summary['records'] == 3 and count_lines(writer.file) == 3


NO_FD = '''import json, logging, os, sys, time
import logfunnel
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq')
log = logging.getLogger('t'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
''' + TAKE_ALL_DESCRIPTORS + '''for i in range(1000):
    log.info('no descriptor %d', i)
for fd in hog[:64]:
    os.close(fd)
time.sleep(1.1)  # the start is tried again once a second (START_RETRY)
for i in range(1000):
    log.info('descriptors back %d', i)
h.flush()
print(json.dumps({'event': 'done', 'stats': h.client.stats}), flush=True)
'''


def test_no_free_descriptor_at_the_first_record(writer_factory, run_code):
    # With every descriptor taken, the sender cannot make its wake-up pipe. Each record used to
    # raise into logging (a "--- Logging error ---" traceback per record, 1000 of them) and was
    # lost without a count. Now the failure is reported once, the records logged meanwhile are
    # kept, and once descriptors are free again the sender starts and sends them with the rest.
    writer = writer_factory()
    p = run_code(NO_FD, writer.endpoint)
    done = p.wait_event('done')
    assert p.wait() == 0
    assert_reported_once(p.stderr, 'LOGFUNNEL_ERR_SENDER_FAILED')  # the one report, through handleError
    assert p.stderr.count('the sender could not start (OSError: [Errno 24] Too many open files)') == 1, p.stderr
    assert done['stats']['lost'] == 0 and done['stats']['confirmed'] == 2000, done
    writer.wait_for_lines(2000)
    assert writer.stop()['records'] == 2000
    assert_clean(verify(writer.file, '--expect', '2000'), 2000, 1)


ATEXIT_FIRST = '''import atexit, json, logging, sys
log = logging.getLogger('s')
# Registered before logfunnel is imported (a dictConfig that imports it later): atexit runs it
# after logfunnel's own exit hook has closed the handler.
atexit.register(lambda: [log.info('at exit %d', i) for i in range(5)])
import logfunnel
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq')
log.addHandler(h); log.setLevel(logging.INFO); log.propagate = False
for i in range(100):
    log.info('record %d', i)
'''


@pytest.mark.parametrize('writer_up', [True, False])
def test_records_from_an_atexit_hook_registered_before_the_import_are_kept(writer_factory, run_code, writer_up):
    """Before, the 5 records logged by the earlier hook were dropped as 'after close()'. (With no
    writer, the exit's close says once that none was reached.)"""
    writer = writer_factory(start=writer_up)
    p = run_code(ATEXIT_FIRST, writer.endpoint)
    assert p.wait() == 0
    assert_unreached_reported(p.stderr, 0 if writer_up else 1)
    if not writer_up:
        writer.start()
    writer.wait_for_lines(105)
    assert writer.stop()['records'] == 105
    assert_clean(verify(writer.file, '--expect', '105'), 105, 1)
    assert writer.spool_files() == []


AT_TEARDOWN = '''import logging, sys
import logfunnel
log = logging.getLogger('app'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq'))


class Resource:
    def __del__(self):  # run as the interpreter clears __main__, after every exit hook
        log.info('released at teardown')


RESOURCE = Resource()
for i in range(100):
    log.info('record %d', i)
'''


def test_a_record_logged_from_del_at_the_interpreters_teardown_is_kept(writer_factory, run_code):
    """A module global's __del__ logs as the interpreter tears down, past the exit hooks: its
    record goes to the spool as other late ones do. Before, it was lost with logging's 40-line
    'NameError: name 'open' is not defined' (the spool's /proc read used builtins.open, which
    the interpreter has taken back by then); 100 of 101 records reached the file."""
    writer = writer_factory()
    p = run_code(AT_TEARDOWN, writer.endpoint)
    assert p.wait() == 0
    assert p.stderr == ''
    writer.wait_for_lines(101)
    assert writer.stop(spool_taken=True)['records'] == 101
    assert_clean(verify(writer.file, '--expect', '101'), 101, 1)
    with open(writer.file, encoding='utf-8') as f:
        assert f.read().splitlines()[-1].endswith('"seq":100,"msg":"released at teardown"}')


SHUTDOWN_THEN_ATEXIT = '''import atexit, logging, sys
import logfunnel
log = logging.getLogger('s')
log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq'))
log.setLevel(logging.INFO); log.propagate = False
atexit.register(lambda: [log.info('at exit %d', i) for i in range(5)])  # runs before logfunnel's exit hook
for i in range(100):
    log.info('record %d', i)
logging.shutdown()  # the application's own, at the end of its main
'''


def test_records_from_an_atexit_hook_after_the_applications_logging_shutdown_are_kept(writer_factory, run_code):
    """The application calls logging.shutdown() at the end of its main (it closes the handler),
    then its atexit hook logs: those records take the client again and are sent. Before, they
    were dropped with LOGFUNNEL_ERR_CLOSED: 100 of 105 records in the file."""
    writer = writer_factory()
    p = run_code(SHUTDOWN_THEN_ATEXIT, writer.endpoint)
    assert p.wait() == 0
    assert p.stderr == ''
    writer.wait_for_lines(105)
    assert writer.stop(spool_taken=True)['records'] == 105
    assert_clean(verify(writer.file, '--expect', '105'), 105, 1)


NO_FD_SESSION = '''import json, logging, os, resource, sys, time
import logfunnel, logfunnel._sender as sender
resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
sender.RESTART_DELAY = 0.005  # the waits between tries are not what this case is about
''' + COUNT_SESSION_FAILURES + '''
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq')
log = logging.getLogger('t'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
n = int(sys.argv[2])
''' + TAKE_ALL_DESCRIPTORS + '''os.close(hog.pop())
os.close(hog.pop())  # two free: the sender's wake-up pipe takes them, its session finds none
for i in range(n):
    log.info('no descriptor for the sockets %d', i)
# Past the tries after which failures that count would have made the sender give up.
deadline = time.monotonic() + 30
while len(tries) <= sender.MAX_FAULTS + 1 and not h.client.broken and time.monotonic() < deadline:
    time.sleep(0.01)
tried = list(tries)
for fd in hog:
    os.close(fd)  # the application frees its descriptors
for i in range(n):
    log.info('descriptors back %d', i)
h.flush()
print(json.dumps({'event': 'done', 'tried': tried, 'broken': h.client.broken, 'stats': h.client.stats}), flush=True)
'''


def test_no_free_descriptor_for_the_senders_session_is_waited_out(writer_factory, run_code):
    # The process at its descriptor limit (RLIMIT_NOFILE lowered to 256, every descriptor taken
    # but the two of the wake-up pipe): each session fails with EMFILE (its ZeroMQ context). Those
    # failures used to count as faults: after six the sender gave up, and every record logged once
    # the descriptors were back was dropped (1000 of 2000 lost). Now the session is tried again
    # with back-off for as long as it lasts, reported once; then every record reaches the file.
    writer = writer_factory()
    n = 1000
    p = run_code(NO_FD_SESSION, writer.endpoint, str(n))
    done = p.wait_event('done')
    assert p.wait() == 0
    assert not done['broken'] and len(done['tried']) > 6 and set(done['tried']) == {24}, done
    assert done['stats']['confirmed'] == 2 * n and done['stats']['lost'] == 0, done
    assert p.stderr.count('LOGFUNNEL_ERR_SENDER_FAILED') == 1, p.stderr
    assert 'the sender failed (ZMQError: Too many open files): no free descriptor for its ZeroMQ context and sockets' in p.stderr
    writer.wait_for_lines(2 * n)
    summary = writer.stop()
    assert summary['records'] == 2 * n and count_lines(writer.file) == 2 * n
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', str(2 * n)), 2 * n, 1)
