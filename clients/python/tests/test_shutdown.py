"""Records logged while the interpreter ends: by threads still running when the exit hooks close
the handler. Each one reaches the file once, and nothing is said on stderr."""

import json

from conftest import assert_clean, verify

# A daemon thread logs N records from the moment the exit begins (an atexit hook registered after
# the import runs before logfunnel's own); a hook registered before the import, so run after
# logfunnel's, waits for it to finish, so that the count is exact. The spool segment's close is
# made slow in the main thread: the thread switch that a busy machine makes between the close of
# a descriptor and the forgetting of its number.
LATE_THREAD = '''import atexit, json, logging, os, sys, threading, time
go, done, window = threading.Event(), threading.Event(), []
def last():
    done.wait(60)
    print(json.dumps({'event': 'end', 'window': len(window), 'stats': client.stats}), flush=True)
atexit.register(last)
import logfunnel, logfunnel.spool as spool

def close_segment(self):
    os.close(self._fd)
    if threading.current_thread() is threading.main_thread():
        window.append(self._fd)
        time.sleep(0.2)
    self._fd = -1
    self._segment += 1
    self._bytes = 0
    return self._tmp_path
spool.SpoolWriter._close_segment = close_segment

endpoint, n = sys.argv[1], int(sys.argv[2])
log = logging.getLogger('late'); log.setLevel(logging.INFO); log.propagate = False
handler = logfunnel.LogfunnelHandler(endpoint, seq_key='seq', linger=0.1)
log.addHandler(handler)
client = handler.client

def daemon():
    go.wait()
    for i in range(n):
        log.info('late %d', i)
    done.set()
threading.Thread(target=daemon, daemon=True).start()
atexit.register(go.set)
for i in range(100):
    log.info('main %d', i)
'''


def test_a_thread_logging_while_the_exit_closes_the_handler_loses_nothing(writer_factory, run_code):
    # Before, the handler's close sealed the spool segment without the client's lock while the
    # thread's late records were appended to it under that lock: the write met the closed
    # descriptor ('logfunnel: OSError: [Errno 9] Bad file descriptor', 'a record logged while the
    # client closed was lost'; 5 of 20 runs with 4 threads logging at exit, without the slow close).
    writer = writer_factory()
    n = 20_000
    p = run_code(LATE_THREAD, writer.endpoint, str(n))
    end = p.wait_event('end', 60)
    assert p.wait() == 0, p.stderr
    assert p.stderr == ''
    assert end['window'] >= 1, end  # the main thread did close a segment while the thread logged
    assert end['stats']['lost'] == 0 and end['stats']['spool_errors'] == 0, end
    writer.wait_for_lines(n + 100)
    writer.stop(spool_taken=True)
    assert_clean(verify(writer.file, '--expect', str(n + 100)), n + 100, 1)
