"""``seq_key`` with handlers made per request (or per task): the handlers of a process for the
same writer and seq_key count together (logfunnel/_sequence.py), whether alive at once, closed,
dropped, made again later or with other client options, so the file's seq per pid is 0, 1, 2,
... in the file's order: ``logfunnel verify`` finds no duplicate, gap or reordering. Before,
each handler counted on its own, and verify reported 4,550 duplicates in 4,800 records."""

import json

import pytest

from conftest import PYTHON, SIGNAL_KICKS, Proc, assert_clean, count_lines, pids_in, run_signal_kicks, verify

PER_REQUEST_THREADS = '''import json, logging, sys, threading
import logfunnel
endpoint, threads, requests, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
start = threading.Barrier(threads)


def serve(t):
    # A handler per request. Of every three: one closed at the request's end, one dropped (no
    # close), one kept alive through the next request on a second logger (two handlers logging
    # in turn), then dropped or closed. One request in four has other client options (a client
    # of its own). The other threads' requests overlap all of them.
    log = logging.getLogger('request.%d' % t); log.setLevel(logging.INFO); log.propagate = False
    side = logging.getLogger('side.%d' % t); side.setLevel(logging.INFO); side.propagate = False
    kept = None
    start.wait()
    for r in range(requests):
        options = {'close_timeout': 20} if r % 4 == 3 else {}
        h = logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq', **options)
        log.addHandler(h)
        for i in range(per):
            (side if kept is not None and i % 2 else log).info('request %d record %d', r, i, extra={'worker': t})
        log.removeHandler(h)
        if kept is not None:
            side.removeHandler(kept)
            if r % 2:
                kept.close()
            kept = None
        if r % 3 == 0:
            h.close()
        elif r % 3 == 1:
            kept = h
            side.addHandler(h)


ts = [threading.Thread(target=serve, args=(t,)) for t in range(threads)]
[t.start() for t in ts]
[t.join() for t in ts]
print(json.dumps({'event': 'done'}), flush=True)
'''


def read(path):
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f]


def test_handlers_per_request_in_threads_count_one_seq(writer_factory, run_code):
    """8 threads, 30 requests each, 20 records a request. Before: 4,550 duplicates; and a handler
    made as another thread closed the last handler of the shared client could take that client
    as it closed: its records dropped with LOGFUNNEL_ERR_CLOSED (up to 90, 1 run in 3)."""
    writer = writer_factory()
    threads, requests, per = 8, 30, 20
    total = threads * requests * per
    p = run_code(PER_REQUEST_THREADS, writer.endpoint, str(threads), str(requests), str(per))
    p.wait_event('done', timeout=120)
    assert p.wait(timeout=120) == 0 and p.stderr == '', p.stderr
    writer.wait_for_lines(total)
    summary = writer.stop(spool_taken=True)
    assert summary['records'] == total and count_lines(writer.file) == total
    assert_clean(verify(writer.file, '--seq-key', 'seq', '--key', 'pid', '--expect-total', str(total)), total, 1)
    records = read(writer.file)
    assert [r['seq'] for r in records] == list(range(total))
    assert sorted((r['worker'], r['msg']) for r in records) == sorted(
        (t, 'request %d record %d' % (r, i)) for t in range(threads) for r in range(requests) for i in range(per))


PER_TASK_POOL = '''import json, logging, multiprocessing as mp, sys
import logfunnel
log = logging.getLogger('task'); log.setLevel(logging.INFO); log.propagate = False


def task(args):
    # A handler per task: every other one closed at the end, the others dropped.
    endpoint, n, per = args
    h = logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq')
    log.addHandler(h)
    for i in range(per):
        log.info('task %d record %d', n, i, extra={'task': n})
    log.removeHandler(h)
    if n % 2:
        h.close()
    return per


if __name__ == '__main__':
    endpoint, how, processes, tasks, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    # The parent counts before the fork: its workers count from 0, each once for all its tasks.
    main = logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq')
    parent = logging.getLogger('parent'); parent.setLevel(logging.INFO); parent.propagate = False
    parent.addHandler(main)
    for i in range(per):
        parent.info('parent record %d', i, extra={'task': -1})
    ctx = mp.get_context('fork')
    work = [(endpoint, n, per) for n in range(tasks)]
    if how == 'with':
        with ctx.Pool(processes) as pool:  # terminate() at the end: SIGTERM to the workers
            counts = pool.map(task, work, chunksize=1)
    else:
        pool = ctx.Pool(processes)
        counts = pool.map(task, work, chunksize=1)
        pool.close()
        pool.join()
    for i in range(per, 2 * per):
        parent.info('parent record %d', i, extra={'task': -1})
    main.close()
    print(json.dumps({'event': 'done', 'records': sum(counts) + 2 * per}), flush=True)
'''


@pytest.mark.parametrize('how', ['with', 'join'])
def test_handlers_per_task_in_a_pool_count_one_seq_per_worker(writer_factory, procs, tmp_path, how):
    """4 forked workers, 40 tasks of 250 records, a handler per task; the parent's handler counted
    250 before the fork. Before, each task's dropped handler counted from 0 again (a closed one
    handed its count on): duplicates in every worker."""
    script = tmp_path / 'per_task.py'
    script.write_text(PER_TASK_POOL)
    writer = writer_factory()
    processes, tasks, per = 4, 40, 250
    total = tasks * per + 2 * per
    p = Proc([PYTHON, str(script), writer.endpoint, how, str(processes), str(tasks), str(per)], cwd=str(tmp_path))
    procs.append(p)
    assert p.wait_event('done', timeout=120)['records'] == total
    assert p.wait(timeout=120) == 0 and p.stderr == '', p.stderr
    writer.wait_for_lines(total)
    summary = writer.stop(spool_taken=True)
    assert summary['records'] == total and count_lines(writer.file) == total
    pids = pids_in(writer.file)
    assert 2 <= pids <= processes + 1
    assert_clean(verify(writer.file, '--seq-key', 'seq', '--key', 'pid', '--expect-total', str(total)), total, pids)
    records = read(writer.file)
    by_pid = {}
    for r in records:
        by_pid.setdefault(r['pid'], []).append(r['seq'])
    assert all(seqs == list(range(len(seqs))) for seqs in by_pid.values()), by_pid
    assert [r['msg'] for r in records if r['task'] == -1] == ['parent record %d' % i for i in range(2 * per)]
    assert sorted((r['task'], r['msg']) for r in records if r['task'] >= 0) == sorted(
        (n, 'task %d record %d' % (n, i)) for n in range(tasks) for i in range(per))


SIGNAL_THROUGH_ANOTHER = '''import json, logging, os, signal, sys, threading, time
import logfunnel
endpoint, kicks = sys.argv[1], int(sys.argv[2])
main_log = logging.getLogger('main'); main_log.setLevel(logging.INFO); main_log.propagate = False
main_log.addHandler(logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq'))
# The signal handler logs through another handler of the same writer and seq_key.
sig_log = logging.getLogger('signal'); sig_log.setLevel(logging.INFO); sig_log.propagate = False
sig_log.addHandler(logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq'))
''' + SIGNAL_KICKS


def test_a_signal_handler_logging_through_another_handler_of_the_sequence_keeps_seq_order(writer_factory, run_code):
    """SIGUSR1 300 times while the main thread logs through one handler; the signal handler logs
    through another with the same writer and seq_key: the record it logs inside an emit follows
    the one that emit writes (one sequence, one lock, one list of deferred records)."""
    writer = writer_factory()
    kicks = 300
    total = run_signal_kicks(writer, run_code, SIGNAL_THROUGH_ANOTHER, kicks)
    records = read(writer.file)
    assert [r['seq'] for r in records] == list(range(total))
    assert sum(r['name'] == 'signal' for r in records) == kicks


FORK_WHILE_LOGGING = '''import json, logging, os, sys, threading, time
import logfunnel
endpoint, forks, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
log = logging.getLogger('parent'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq'))
other = logging.getLogger('other'); other.setLevel(logging.INFO); other.propagate = False
other.addHandler(logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq', close_timeout=20))
stop, counts = threading.Event(), []


def burst(t):
    # Threads logging through two handlers of the sequence (two clients): its lock is held at
    # the forks, often by another thread, sometimes waiting for the other client's receipts.
    n = 0
    while not stop.is_set() and n < 20000:
        (other if n % 7 == 0 else log).info('thread %d record %d', t, n)
        n += 1
    counts.append(n)


threads = [threading.Thread(target=burst, args=(t,)) for t in range(4)]
[t.start() for t in threads]
hung = 0
for f in range(forks):
    pid = os.fork()
    if pid == 0:
        # The child counts from 0 through a new handler of the sequence and the inherited ones.
        child = logging.getLogger('child'); child.setLevel(logging.INFO); child.propagate = False
        child.addHandler(logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq'))
        for i in range(per):
            (child, log, other)[i % 3].info('child %d record %d', f, i)
        logging.shutdown()
        os._exit(0)
    deadline = time.monotonic() + 30
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            hung += 1
            break
        time.sleep(0.01)
stop.set()
[t.join() for t in threads]
print(json.dumps({'event': 'done', 'parent': sum(counts), 'hung': hung}), flush=True)
'''


def test_a_child_forked_while_threads_log_counts_from_0_and_takes_the_lock(writer_factory, run_code):
    """10 forks while 4 threads log through two handlers of one sequence: each child takes the
    sequence's lock (a new one: the parent's may be held by a thread the child does not have) and
    counts from 0, through a new handler and the inherited ones; none hangs."""
    writer = writer_factory()
    forks, per = 10, 60
    p = run_code(FORK_WHILE_LOGGING, writer.endpoint, str(forks), str(per))
    done = p.wait_event('done', timeout=180)
    assert p.wait(timeout=60) == 0 and p.stderr == '', p.stderr
    assert done['hung'] == 0, done
    total = done['parent'] + forks * per
    writer.wait_for_lines(total, timeout=60)
    summary = writer.stop(spool_taken=True)
    assert summary['records'] == total and count_lines(writer.file) == total
    assert_clean(verify(writer.file, '--seq-key', 'seq', '--key', 'pid', '--expect-total', str(total)), total, forks + 1)
