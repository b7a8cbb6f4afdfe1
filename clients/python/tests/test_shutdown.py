"""Records logged while the interpreter ends: by threads still running when the exit hooks close
the handler. Each one reaches the file once, and nothing is said on stderr."""

import json

import pytest

from conftest import assert_clean, free_port, verify

# A daemon thread logs from the moment the exit hook has closed the handler's sender (its records
# go to the spool, in a segment left open until the end of the process) until the hook has sealed
# that segment. The seal's close of the descriptor is made slow in the main thread: the thread
# switch that a busy machine makes between the close of a descriptor and the forgetting of its
# number. A hook registered before the import (so run after logfunnel's) waits for the thread
# and says how many it logged, so that the count is exact.
LATE_THREAD = '''import atexit, json, logging, os, sys, threading, time
closing, sealed, done, window, count = threading.Event(), threading.Event(), threading.Event(), [], [0]
def last():
    done.wait(60)
    print(json.dumps({'event': 'end', 'window': len(window), 'late': count[0], 'stats': client.stats}), flush=True)
atexit.register(last)
import logfunnel, logfunnel.spool as spool, logfunnel._producer as producer

def close_segment(self):
    os.close(self._fd)
    if threading.current_thread() is threading.main_thread() and closing.is_set():
        window.append(self._fd)
        time.sleep(0.2)
        sealed.set()
    self._fd = -1
    self._segment += 1
    self._bytes = 0
    return self._tmp_path
spool.SpoolWriter._close_segment = close_segment

join_sender = producer._Producer._join_sender
def join_then_wait_for_a_late_record(self, *args):
    joined = join_sender(self, *args)
    closing.set()
    deadline = time.monotonic() + 30
    while not (self._spool is not None and self._spool.open) and time.monotonic() < deadline:
        time.sleep(0.001)
    return joined
producer._Producer._join_sender = join_then_wait_for_a_late_record

endpoint = sys.argv[1]
log = logging.getLogger('late'); log.setLevel(logging.INFO); log.propagate = False
handler = logfunnel.LogfunnelHandler(endpoint, seq_key='seq', linger=0.1)
log.addHandler(handler)
client = handler.client

def daemon():
    closing.wait()
    while not sealed.is_set():
        log.info('late %d', count[0])
        count[0] += 1
    done.set()
threading.Thread(target=daemon, daemon=True).start()
for i in range(100):
    log.info('main %d', i)
'''


def test_a_thread_logging_while_the_exit_closes_the_handler_loses_nothing(writer_factory, run_code):
    # Before, the handler's close sealed the spool segment without the client's lock while the
    # thread's late records were appended to it under that lock: the write met the closed
    # descriptor ('logfunnel: OSError: [Errno 9] Bad file descriptor', 'a record logged while the
    # client closed was lost'; 5 of 20 runs with 4 threads logging at exit, without the slow close).
    writer = writer_factory()
    p = run_code(LATE_THREAD, writer.endpoint)
    end = p.wait_event('end', 60)
    assert p.wait() == 0, p.stderr
    assert p.stderr == ''
    assert end['window'] == 1 and end['late'] >= 1, end  # a segment of late records was sealed as the thread logged
    assert end['stats']['lost'] == 0 and end['stats']['spool_errors'] == 0, end
    n = 100 + end['late']
    writer.wait_for_lines(n)
    writer.stop(spool_taken=True)
    assert_clean(verify(writer.file, '--expect', str(n)), n, 1)


# A thread that logs N records once the exit hooks have closed the handler (it starts from a hook
# registered before the import, so run after logfunnel's), with a spool that cannot be written
# (its directory under a regular file): every one of them is lost.
LATE_THREAD_NO_SPOOL = '''import atexit, json, logging, sys, threading
go, done = threading.Event(), threading.Event()
def last():
    go.set()
    done.wait(60)
    print(json.dumps({'event': 'end', 'stats': client.stats}), flush=True)
atexit.register(last)
import logfunnel
endpoint, n, spool_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
log = logging.getLogger('late'); log.setLevel(logging.INFO); log.propagate = False
handler = logfunnel.LogfunnelHandler(endpoint, seq_key='seq', spool_dir=spool_dir)
log.addHandler(handler)
client = handler.client

def daemon():
    go.wait()
    for i in range(n):
        log.info('late %d', i)
    done.set()
threading.Thread(target=daemon, daemon=True).start()
for i in range(100):
    log.info('main %d', i)
'''


def test_records_lost_after_the_close_for_want_of_a_spool_are_said_once(writer_factory, run_code, tmp_path):
    # Before, each such record wrote its own line: 2,000 lines here, 407 from a thread logging
    # for the 0.1 s of a plain script's exit.
    writer = writer_factory()
    (tmp_path / 'file').write_text('')
    n = 2000
    p = run_code(LATE_THREAD_NO_SPOOL, writer.endpoint, str(n), str(tmp_path / 'file' / 'spool'))
    end = p.wait_event('end', 60)
    assert p.wait() == 0, p.stderr
    assert end['stats']['lost'] == n and end['stats']['confirmed'] == 100, end
    said = p.stderr.splitlines()
    # One line, with the spool's failure (before, also a line of its own: 'logfunnel: NotADirectoryError: ...').
    assert said == ["logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: a record logged while the client closed was lost (the spool "
                    "could not be written: ENOTDIR: Not a directory: '%s'); later ones are counted in stats['lost'], not "
                    "said again" % (tmp_path / 'file' / 'spool')], p.stderr
    writer.stop()
    assert_clean(verify(writer.file, '--expect', '100'), 100, 1)


# A script whose records cannot be kept (no writer; no spool, or one that cannot be written):
# the time from the start of the exit hooks to the end of the last one, logging.shutdown().
UNKEPT = '''import atexit, json, time
began = []
def ended():  # registered before logging is imported: runs after logging.shutdown()
    print(json.dumps({'event': 'end', 'seconds': time.monotonic() - began[0]}), flush=True)
atexit.register(ended)
import logging, sys
import logfunnel
kept = {'spool_dir': sys.argv[2]} if len(sys.argv) > 2 else {}
log = logging.getLogger('unkept'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(sys.argv[1], close_timeout=3, **kept))
for i in range(10):
    log.info('record %d', i)
atexit.register(lambda: began.append(time.monotonic()))  # runs first
'''


@pytest.mark.parametrize('spool', ['none', 'unwritable'])
def test_the_exit_waits_once_for_records_it_cannot_keep(run_code, tmp_path, spool):
    # Before, logging.shutdown() flushed the handler that the exit hook had closed, and waited
    # close_timeout again for the records that close could not keep: 6.1 s here with no spool
    # (close_timeout twice, 20 s with the default 10 s), 4.1 s with a spool that cannot be
    # written (linger, then close_timeout).
    if spool == 'none':
        p = run_code(UNKEPT, 'tcp://127.0.0.1:%d' % free_port())
        waits = 3.0  # close_timeout: without a spool the exit waits that long for receipts
    else:
        (tmp_path / 'file').write_text('')
        p = run_code(UNKEPT, 'ipc://%s' % (tmp_path / 'none.sock'), str(tmp_path / 'file' / 'spool'))
        waits = 1.0  # linger
    end = p.wait_event('end', 60)
    assert p.wait() == 0, p.stderr
    assert waits <= end['seconds'] < waits + 1.5, end
    said = p.stderr.splitlines()
    assert said[-1].startswith('logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: close deadline: 10 records without a receipt lost'), p.stderr
