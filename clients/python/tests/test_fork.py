"""A forked child (os.fork(), multiprocessing's fork) keeps none of the parent handler's
descriptors that wake its sender thread, and both processes log on, each record once."""

import socket

import pytest

from conftest import assert_clean, count_lines, free_port, verify
from logfunnel.spool import fd_identity

FORK = '''import json, logging, multiprocessing, os, sys
import logfunnel
endpoint, how, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
h = logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq')
log = logging.getLogger('fork'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
log.info('parent, before the fork')
h.flush()  # the parent's sender runs: its wake-up pipe is open
producer = h.client._producer
wake = {os.fstat(fd).st_ino for fd in (producer._wake_r, producer._wake_w)}

def pipes():
    """The inodes of the pipes this process holds."""
    found = set()
    for name in os.listdir('/proc/self/fd'):
        try:
            link = os.readlink('/proc/self/fd/' + name)
        except OSError:
            continue  # the listing's own descriptor
        if link.startswith('pipe:['):
            found.add(int(link[6:-1]))
    return found

def child():
    at_start = sorted(pipes() & wake)
    for i in range(n):
        log.info('child %d', i)
    h.flush()
    print(json.dumps({'event': 'child', 'at_start': at_start, 'after': sorted(pipes() & wake),
                      'confirmed': h.client.stats['confirmed']}), flush=True)

if how == 'os.fork':
    pid = os.fork()
    if pid == 0:
        try:
            child()
        finally:
            os._exit(0)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
else:
    p = multiprocessing.get_context('fork').Process(target=child)
    p.start()
    p.join()
    code = p.exitcode
for i in range(n):
    log.info('parent %d', i)
h.flush()
print(json.dumps({'event': 'parent', 'code': code, 'wake': sorted(wake), 'confirmed': h.client.stats['confirmed']}), flush=True)
'''


@pytest.mark.parametrize('how', ['os.fork', 'multiprocessing'])
def test_a_forked_child_keeps_none_of_the_parents_wake_up_pipe(writer_factory, run_code, how):
    """Before, the child held both ends of the parent's pipe for its whole life: two descriptors
    per handler and fork, never used (its own sender makes a pipe of its own)."""
    writer = writer_factory()
    n = 1000
    p = run_code(FORK, writer.endpoint, how, str(n))
    child = p.wait_event('child')
    parent = p.wait_event('parent')
    assert p.wait() == 0 and p.stderr == ''
    assert len(parent['wake']) == 1 and parent['code'] == 0
    assert (child['at_start'], child['after'], child['confirmed']) == ([], [], n)
    assert parent['confirmed'] == n + 1
    total = 2 * n + 1
    writer.wait_for_lines(total)
    summary = writer.stop()
    assert summary['records'] == total and count_lines(writer.file) == total
    assert_clean(verify(writer.file, '--key', 'pid', '--expect-total', str(total)), total, 2)


HOLDS = '''import json, logging, os, socket, sys, time, urllib.request
import logfunnel, logfunnel._spooling
# The away client's spool segment stays open across the fork (it is handed over 0.1 s after its first entry).
logfunnel._spooling.SEGMENT_MAX_AGE = 60
endpoint, away_endpoint, spool, metrics, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
writer_paths = {endpoint[len('ipc://'):], endpoint[len('ipc://'):] + '.receipts'}
h = logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq')
log = logging.getLogger('fork'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
log.info('parent, before the fork')
h.flush()  # the parent's sender is connected to the writer
away = logfunnel.Client(endpoint=away_endpoint, spool_dir=spool)
away.send('{"msg":"for a writer that is away"}')
deadline = time.monotonic() + 10
while away.stats['spool_copies'] < 1 and time.monotonic() < deadline:
    time.sleep(0.01)
segment = os.fstat(away._producer._spool._fd)
segment = (segment.st_dev, segment.st_ino)

def held():
    """This process's connections to the writer and descriptors of the away client's segment."""
    connections = segments = 0
    for name in os.listdir('/proc/self/fd'):
        try:
            st = os.fstat(int(name))
        except OSError:
            continue  # the listing's own descriptor
        if (st.st_dev, st.st_ino) == segment:
            segments += 1
        try:
            s = socket.socket(fileno=int(name))
        except OSError:
            continue
        try:
            connections += s.getpeername() in writer_paths
        except OSError:
            pass
        finally:
            s.detach()
    return connections, segments

def connected(want):
    """The writer's count of connected producers once it is ``want``, or as it is after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(metrics) as res:
            line = [l for l in res.read().decode().splitlines() if l.startswith('logfunnel_connected_producers ')][0]
        seen = int(float(line.split()[1]))
        if seen == want or time.monotonic() > deadline:
            return seen
        time.sleep(0.01)

print(json.dumps({'event': 'parent', 'held': held(), 'copies': away.stats['spool_copies']}), flush=True)
r, w = os.pipe()
sent_r, sent_w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    try:
        at_start = held()
        for i in range(n):
            log.info('child %d', i)
        h.flush()
        print(json.dumps({'event': 'child', 'at_start': at_start, 'confirmed': h.client.stats['confirmed']}), flush=True)
        os.write(sent_w, b'x')
        os.read(r, 1)  # the parent has closed its handler and seen what the writer counts
        h.close()
    finally:
        os._exit(0)
os.close(r)
os.close(sent_w)  # a child that dies ends the read below
try:
    os.read(sent_r, 1)  # the child is connected, its records confirmed and its line printed
    both = connected(2)  # the parent's connection and the child's own
    h.close()
    away.close()
    # The parent's connection is closed: the writer counts the child's alone (before, both, for as long as the child lived).
    print(json.dumps({'event': 'closed', 'both': both, 'connected': connected(1)}), flush=True)
finally:
    os.write(w, b'x')
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps({'event': 'done', 'code': code}), flush=True)
'''


def test_a_forked_child_keeps_none_of_the_parents_connections_to_the_writer_nor_its_spool_segment(writer_factory, run_code, tmp_path):
    """Before, the child held the parent's two connections to the writer (and its open spool
    segment) for its whole life: the writer counted the parent as connected after the parent
    closed, until the child ended."""
    port = free_port()
    writer = writer_factory(['--metrics-port', str(port)])
    n = 500
    p = run_code(HOLDS, writer.endpoint, 'ipc://%s' % (tmp_path / 'away.sock'), str(tmp_path / 'away-spool'),
                 'http://127.0.0.1:%d/metrics' % port, str(n))
    parent = p.wait_event('parent')
    child = p.wait_event('child')
    closed = p.wait_event('closed')
    done = p.wait_event('done')
    assert p.wait() == 0, p.stderr
    assert (parent['held'], parent['copies']) == ([2, 1], 1)
    assert (child['at_start'], child['confirmed']) == ([0, 0], n)
    assert (closed['both'], closed['connected'], done['code']) == (2, 1, 0)
    total = n + 1
    writer.wait_for_lines(total)
    summary = writer.stop()
    assert summary['records'] == total and count_lines(writer.file) == total
    assert_clean(verify(writer.file, '--key', 'pid', '--expect-total', str(total)), total, 2)


@pytest.mark.parametrize('host', ['127.0.0.1', 'localhost'])
def test_only_connections_to_the_writers_endpoints_are_closed_in_a_child(host):
    """What reset() closes in a forked child, over tcp: the sockets connected to the endpoint's
    port or its receipt port (the host resolved as libzmq does), not one to another port, nor a
    listening one."""
    from logfunnel._inherited import close_connections_to, writer_peers
    servers = []
    for _ in range(3):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        s.listen(4)
        servers.append(s)
    port = servers[0].getsockname()[1]
    receipts = servers[1].getsockname()[1]
    other = servers[2].getsockname()[1]
    clients = [socket.create_connection(('127.0.0.1', p)) for p in (port, receipts, other)]
    try:
        peers = writer_peers('tcp://%s:%d' % (host, port), 'tcp://%s:%d' % (host, receipts))
        assert close_connections_to(peers) == 2
        open_now = [fd_identity(c.fileno()) is not None for c in clients]
        assert open_now == [False, False, True]
        assert all(fd_identity(s.fileno()) is not None for s in servers)
    finally:
        for c in clients:
            c.detach() if fd_identity(c.fileno()) is None else c.close()
        for s in servers:
            s.close()


# os.fork() from a worker thread while other threads log; the child logs, then its main thread
# (the one that forked) ends by sys.exit(), with or without a thread of the child's own still
# logging. The parent says how each child ended, and when.
FORK_FROM_A_THREAD = '''import json, logging, os, sys, threading, time
import logfunnel
endpoint, n, children = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(',')
log = logging.getLogger('threads'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq'))
stop, busy = threading.Event(), [0]

def logging_on():
    while not stop.is_set():
        log.info('parent thread %d', busy[0])
        busy[0] += 1
busy_thread = threading.Thread(target=logging_on)
busy_thread.start()
ended = []

def forker(kind):
    pid = os.fork()
    if pid == 0:
        if kind == 'with-a-thread':  # a thread of the child's own, logging on after the main thread ended
            def more():
                time.sleep(0.5)
                for i in range(n):
                    log.info('child thread %d', i)
            threading.Thread(target=more).start()
        for i in range(n):
            log.info('child %d', i)
        sys.exit(3)  # SystemExit in a thread: the thread ends, not the process
    began = time.monotonic()
    while time.monotonic() - began < 30:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            ended.append({'kind': kind, 'status': os.waitstatus_to_exitcode(status), 'seconds': time.monotonic() - began})
            return
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    ended.append({'kind': kind, 'status': None, 'seconds': None})

for kind in children:
    t = threading.Thread(target=forker, args=(kind,))
    t.start()
    t.join()
stop.set()
busy_thread.join()
log.info('parent end')
print(json.dumps({'event': 'end', 'children': ended, 'parent': busy[0] + 1}), flush=True)
'''


def test_a_child_forked_from_a_thread_ends_when_its_threads_do(writer_factory, run_code):
    # Before, the child lived on after its main thread (the thread that forked) ended: the
    # interpreter does not finalize then, and the process ends with its last thread, which the
    # handler's threads (the sender, ZeroMQ's, the signal watcher) never were; SIGTERM did not
    # end it either. With a FileHandler, such a child ends at once.
    writer = writer_factory()
    n = 1000
    p = run_code(FORK_FROM_A_THREAD, writer.endpoint, str(n), 'alone,with-a-thread')
    end = p.wait_event('end', 90)
    assert p.wait() == 0, p.stderr
    assert p.stderr == ''
    alone, with_thread = end['children']
    # exit status 0: that of a process whose last thread ended (SystemExit in a thread ends only it)
    assert alone['status'] == 0 and alone['seconds'] < 10, end
    assert with_thread['status'] == 0 and 0.5 <= with_thread['seconds'] < 10, end  # waits for the child's own thread
    lines = end['parent'] + n + 2 * n
    writer.wait_for_lines(lines)
    writer.stop(spool_taken=True)
    assert_clean(verify(writer.file), lines, 3)


# A fork at the worst moment of the first record: while it starts the sender, between the
# making of its wake-up pipe and the noting of which pipe it is (another thread forking then).
FORK_WHILE_THE_SENDER_STARTS = '''import json, logging, os, sys, threading
import logfunnel, logfunnel._sender as sender
endpoint, n = sys.argv[1], int(sys.argv[2])
log = logging.getLogger('race'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq'))
identity, go, forked, children = sender.fd_identity, threading.Event(), threading.Event(), []

def wait_for_the_fork_then_identity(fd):  # the first record's thread, its wake-up pipe just made
    if not forked.is_set():
        go.set()
        forked.wait(30)
    return identity(fd)
sender.fd_identity = wait_for_the_fork_then_identity

def forker():
    go.wait(30)
    pid = os.fork()
    if pid == 0:
        forked.set()  # the child's own sender starts without waiting
        for i in range(n):
            log.info('child %d', i)
        logging.shutdown()  # a bare fork's child ends in os._exit(): no exit hook runs
        os._exit(0)
    children.append(pid)
    forked.set()
t = threading.Thread(target=forker)
t.start()
log.info('parent, first record')
t.join()
status = os.waitstatus_to_exitcode(os.waitpid(children[0], 0)[1])
log.info('parent, after the child')
print(json.dumps({'event': 'end', 'status': status}), flush=True)
'''


def test_a_fork_while_the_first_record_starts_the_sender(writer_factory, run_code):
    # Before, the child's reset raised AttributeError ('_Producer' object has no attribute
    # '_wake_pipe'; 'Exception ignored in: <function _forked ...>'), leaving the child with the
    # parent's producer state: its records were never sent.
    writer = writer_factory()
    n = 500
    p = run_code(FORK_WHILE_THE_SENDER_STARTS, writer.endpoint, str(n))
    end = p.wait_event('end', 60)
    assert p.wait() == 0, p.stderr
    assert p.stderr == ''
    assert end['status'] == 0, end
    writer.wait_for_lines(n + 2)
    writer.stop(spool_taken=True)
    assert_clean(verify(writer.file), n + 2, 2)
