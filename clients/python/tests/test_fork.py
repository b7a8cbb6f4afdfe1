"""A forked child (os.fork(), multiprocessing's fork) keeps none of the parent handler's
descriptors that wake its sender thread, and both processes log on, each record once."""

import pytest

from conftest import assert_clean, count_lines, verify

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
