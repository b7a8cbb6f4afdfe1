"""Real pools, exact counts: every record in the file once, in order, per process."""

import os
import time

import pytest

from conftest import assert_clean, assert_unreached_reported, pids_in, verify

PROCESSES = 4
RECORDS = 5000
TOTAL = PROCESSES * RECORDS


def test_with_pool_writer_down_5s_nothing_lost(writer_factory, run_python):
    """`with Pool(4)` ends in terminate() (SIGTERM to the workers) while the writer is down:
    the workers spool on SIGTERM, the writer started 5 s later ingests every record. A worker
    that ends by its exit finalizer before the SIGTERM (it took terminate()'s sentinel first)
    says once that no writer was reached, so at most one report per worker."""
    writer = writer_factory(start=False)
    started = time.monotonic()
    pool = run_python('pool_run.py', writer.endpoint, 'with', 'fork', str(PROCESSES), str(RECORDS))
    done = pool.wait_event('done')
    assert pool.wait() == 0, pool.stderr
    assert done['records'] == TOTAL
    assert_unreached_reported(pool.stderr, range(PROCESSES + 1))
    time.sleep(max(0.0, 5.0 - (time.monotonic() - started)))  # the writer stays down 5 s
    writer.start()
    writer.wait_for_lines(TOTAL)
    summary = writer.stop()
    assert summary['records'] == TOTAL
    assert writer.spool_files() == []
    assert 1 <= pids_in(writer.file) <= PROCESSES
    assert_clean(verify(writer.file, '--expect-total', str(TOTAL)), TOTAL, None)


def logging_halfway(run_python, writer, tmp_path):
    """A pool of PROCESSES whose tasks have each logged 2,000 records and go on logging until
    ``tmp_path/go`` exists (pool_run.py ``restart``)."""
    pool = run_python('pool_run.py', writer.endpoint, 'restart', 'fork', str(PROCESSES), '2000', str(tmp_path))
    deadline = time.monotonic() + 30
    while not all(os.path.exists(tmp_path / ('half-%d' % n)) for n in range(PROCESSES)):
        assert time.monotonic() < deadline, pool.stderr
        time.sleep(0.02)
    return pool


def test_writer_restarted_mid_run_nothing_lost_or_doubled(writer_factory, run_python, tmp_path):
    writer = writer_factory(['--drain-timeout-ms', '500'])
    pool = logging_halfway(run_python, writer, tmp_path)
    first = writer.stop()
    writer.start()
    (tmp_path / 'go').touch()
    done = pool.wait_event('done')
    assert pool.wait() == 0, pool.stderr
    second = writer.stop(spool_taken=True)
    assert first['records'] + second['records'] == done['records']
    assert_clean(verify(writer.file, '--expect-total', str(done['records'])), done['records'], PROCESSES)


def test_writer_killed_mid_run_nothing_lost(writer_factory, run_python, tmp_path):
    """kill -9 of the writer while the pool logs: the next writer takes over (its saved state at
    most 100 ms old); every record reaches the file, in order per process, with no gap; what the
    killed writer wrote and had not yet receipted may be written twice."""
    writer = writer_factory(['--state-persist-ms', '100'])
    pool = logging_halfway(run_python, writer, tmp_path)
    assert writer.proc is not None
    writer.proc.kill()
    writer.start()
    (tmp_path / 'go').touch()
    done = pool.wait_event('done')
    assert pool.wait() == 0, pool.stderr
    assert pool.stderr == ''
    summary = writer.stop(spool_taken=True)
    assert summary['conflicts'] == 0
    report = verify(writer.file)
    assert {k: report[k] for k in ('torn', 'gaps', 'reordered')} == {'torn': 0, 'gaps': 0, 'reordered': 0}
    assert report['lines'] == done['records'] + report['duplicates']
    assert report['producers'] == PROCESSES


@pytest.mark.parametrize('method', ['fork', 'spawn', 'forkserver'])
def test_start_methods(writer_factory, run_python, method):
    """Each start method, ended by the `with` block's terminate() with the writer up."""
    writer = writer_factory()
    pool = run_python('pool_run.py', writer.endpoint, 'with', method, '2', str(RECORDS))
    assert pool.wait_event('done')['records'] == 2 * RECORDS
    assert pool.wait() == 0, pool.stderr
    writer.wait_for_lines(2 * RECORDS)
    assert writer.stop()['records'] == 2 * RECORDS
    assert 1 <= pids_in(writer.file) <= 2
    assert_clean(verify(writer.file, '--expect-total', str(2 * RECORDS)), 2 * RECORDS, None)


@pytest.mark.parametrize('mode', ['executor', 'threads'])
def test_process_pool_executor_and_threads_inside_pool_processes(writer_factory, run_python, mode):
    """concurrent.futures.ProcessPoolExecutor; and a Pool whose processes log from several
    threads each (one counter per process, shared by its threads: verify per pid proves each
    process's order)."""
    writer = writer_factory()
    pool = run_python('pool_run.py', writer.endpoint, mode, 'fork', str(PROCESSES), str(RECORDS))
    assert pool.wait_event('done')['records'] == TOTAL
    assert pool.wait() == 0, pool.stderr
    assert writer.stop(spool_taken=True)['records'] == TOTAL
    assert 1 <= pids_in(writer.file) <= PROCESSES
    assert_clean(verify(writer.file, '--expect-total', str(TOTAL)), TOTAL, None)
