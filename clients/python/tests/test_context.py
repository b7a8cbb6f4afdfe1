"""One ZeroMQ context per process: a handler made near the descriptor limit no longer aborts the
process; many handlers alive at once cost one thread each, not three, and one in all when they
share a client (the same options)."""

import pytest

from conftest import COUNT_SESSION_FAILURES, TAKE_ALL_DESCRIPTORS, PYTHON, Proc, assert_clean, count_lines, verify

AT_THE_LIMIT = '''import json, logging, os, resource, sys, time
import logfunnel, logfunnel._sender as sender
endpoint, case, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
''' + COUNT_SESSION_FAILURES + '''
log = logging.getLogger('t'); log.setLevel(logging.INFO); log.propagate = False
if case == 'a later handler':
    # Options of its own: with the same options the handler below would share its client (handler.py).
    first = logfunnel.LogfunnelHandler(endpoint=endpoint, close_timeout=9.0)
    log.addHandler(first)
    for i in range(n):
        log.info('before %d', i, extra={'handler': 'first', 'seq': i})
    first.flush()  # its session (and, now, the process's context) is up
    log.removeHandler(first)
h = logfunnel.LogfunnelHandler(endpoint=endpoint)  # made here: its signal watcher takes no descriptor below
log.addHandler(h)
''' + TAKE_ALL_DESCRIPTORS + '''# Four free: the sender's wake-up pipe takes two, its session finds two. A context started there
# took its term mailbox and the reaper's, and libzmq aborted on the reaper's epoll descriptor.
for _ in range(4):
    os.close(hog.pop())
for i in range(n):
    log.info('at the limit %d', i, extra={'handler': 'edge', 'seq': i})
deadline = time.monotonic() + 30
while not tries and time.monotonic() < deadline:
    time.sleep(0.01)
tried = list(tries)
for fd in hog:
    os.close(fd)  # the application frees its descriptors
h.flush()
print(json.dumps({'event': 'done', 'tried': tried, 'stats': h.client.stats}), flush=True)
'''


@pytest.mark.parametrize('case', ['the first handler', 'a later handler'])
def test_a_handler_started_at_the_descriptor_limit_waits_instead_of_aborting(writer_factory, run_code, case):
    # Before: the session's new context aborted the process (status -6, SIGABRT: 'Too many open
    # files (src/epoll.cpp:65)'), and every record it held was lost. Now the session fails with
    # EMFILE (the shared context's start, or a socket of this producer's), reported once, and is
    # tried again until the descriptors are back; then every record reaches the file.
    writer = writer_factory()
    n = 100
    p = run_code(AT_THE_LIMIT, writer.endpoint, case, str(n))
    done = p.wait_event('done')
    assert p.wait() == 0, p.stderr
    assert done['tried'][:1] == [24] and done['stats']['confirmed'] == n and done['stats']['lost'] == 0, done
    assert p.stderr.count('LOGFUNNEL_ERR_SENDER_FAILED') == 1, p.stderr
    assert 'the sender failed (ZMQError: Too many open files): no free descriptor for its ZeroMQ context and sockets' in p.stderr
    total = 2 * n if case == 'a later handler' else n
    writer.wait_for_lines(total)
    assert writer.stop()['records'] == total and count_lines(writer.file) == total
    assert_clean(verify(writer.file, '--key', 'handler', '--expect', str(n)), total, total // n)


ALIVE = '''import json, logging, os, resource, sys, time
import logfunnel
endpoint, n, own = sys.argv[1], int(sys.argv[2]), sys.argv[3] == 'own'
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))

def state():
    with open('/proc/self/status') as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith('Threads:'))
    return {'threads': threads, 'fds': len(os.listdir('/proc/self/fd'))}

base = state()
# 'own': options of their own (a close_timeout each), so none shares another's client.
handlers = [logfunnel.LogfunnelHandler(endpoint=endpoint, **({'close_timeout': 10 + k / 1000} if own else {})) for k in range(n)]
for k, h in enumerate(handlers):
    log = logging.getLogger('alive.%d' % k); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
    for i in range(10):
        log.info('record %d', i, extra={'handler': k, 'seq': i})
for h in handlers:
    h.flush()  # every session up, every record confirmed
alive = state()
for h in handlers:
    h.close()
# libzmq's reaper closes the sockets' descriptors after close() returns; the keeper ends 5 s later
settled, deadline = state(), time.monotonic() + 30
while settled != {'threads': base['threads'] + 3, 'fds': base['fds'] + 7} and time.monotonic() < deadline:
    time.sleep(0.02)
    settled = state()
print(json.dumps({'event': 'done', 'base': base, 'alive': alive, 'closed': settled}), flush=True)
'''


@pytest.mark.parametrize('options', ['own', 'shared'])
def test_handlers_alive_at_once(writer_factory, run_code, options):
    # 60 handlers alive at once. With options of their own, one session each. Before: three
    # threads each (the sender, and its own context's libzmq I/O thread and reaper) and 15
    # descriptors (182 threads and 908 descriptors in all, from 1 and 6). Now the sender's thread
    # and 10 descriptors (its wake-up pipe, six socket mailboxes, two connections), and once per
    # process the signal watcher (a thread, two descriptors) and the context (two threads, five
    # descriptors): 64 threads and 613 descriptors. With the same options they share one client
    # (handler.py), as Node's funnel() destinations share a sender: one session for all 60.
    writer = writer_factory()
    n = 60
    p = run_code(ALIVE, writer.endpoint, str(n), options)
    done = p.wait_event('done')
    assert p.wait() == 0 and p.stderr == ''
    base = done['base']
    sessions = n if options == 'own' else 1
    # And the thread that keeps a shared client a while after its last handler (_sharing.py).
    assert done['alive'] == {'threads': base['threads'] + 4 + sessions, 'fds': base['fds'] + 7 + 10 * sessions}, done
    assert done['closed'] == {'threads': base['threads'] + 3, 'fds': base['fds'] + 7}, done
    writer.wait_for_lines(10 * n)
    assert writer.stop()['records'] == 10 * n
    assert_clean(verify(writer.file, '--key', 'handler', '--expect', '10'), 10 * n, n)


FORKED = '''import gc, logging, os, sys
import logfunnel
log = logging.getLogger('forked'); log.setLevel(logging.INFO); log.propagate = False
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq')
log.addHandler(h)
log.info('parent')
h.close()
log.removeHandler(h)
del h
gc.collect()  # nothing of the parent's producer is left: only the process's context holds its own
pid = os.fork()
if pid == 0:
    log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq'))
    log.info('child')
    sys.exit(0)
assert os.waitpid(pid, 0)[1] == 0
'''


def test_a_forked_child_makes_its_own_context_and_says_nothing(writer_factory, procs, tmp_path):
    # The child makes a context of its own with its first record and keeps the parent's (which it
    # cannot end): collected, pyzmq said 'ResourceWarning: Unclosed context' in the child
    # (python3 -X dev -W error: 'Exception ignored in: <function Context.__del__ ...>').
    writer = writer_factory()
    p = Proc([PYTHON, '-X', 'dev', '-W', 'error', '-c', FORKED, writer.endpoint], cwd=str(tmp_path))
    procs.append(p)
    assert p.wait() == 0 and p.stderr == ''
    writer.wait_for_lines(2)
    assert writer.stop()['records'] == 2
    assert_clean(verify(writer.file, '--expect', '1'), 2, 2)
