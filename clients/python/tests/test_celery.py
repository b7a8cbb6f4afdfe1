"""Celery (Debian's python3-celery) as a user runs it: a prefork worker (`celery -A celery_app
worker --concurrency 4 --pool prefork`) whose logging is set up by a ``setup_logging`` receiver
with dictConfig (scripts/celery_app.py), kombu's filesystem transport as the broker, a producer
script sending the tasks (scripts/celery_send.py). Every task's records in the file once.

The tasks are sent before the worker starts: kombu's filesystem transport (5.2.4) writes a
message's file in place, and a worker polling meanwhile may read it empty (its consumer then
ends with "Unrecoverable error: JSONDecodeError"), a race of the test broker, not of logging."""

import os
import signal
import time

import pytest

from conftest import PYTHON, PYTHON_DIR, Proc, assert_clean, pids_in, verify

SCRIPTS = os.path.join(os.path.dirname(__file__), 'scripts')
TASKS = 20
RECORDS = 200
TOTAL = TASKS * RECORDS


@pytest.fixture(autouse=True)
def require_celery():
    try:
        import celery  # noqa: F401
    except ImportError:
        if os.environ.get('CI'):
            raise AssertionError('celery is not importable: install the Debian package python3-celery')
        pytest.skip('celery is not importable: install the Debian package python3-celery')


def start_worker(procs, tmp_path, writer, *args):
    """The worker, once it says it is ready (its consumer is connected to the broker)."""
    worker = Proc([PYTHON, '-m', 'celery', '-A', 'celery_app', 'worker', '--concurrency', '4', '--pool', 'prefork',
                   '--loglevel', 'INFO', *args], cwd=str(tmp_path), env=celery_env(tmp_path, writer))
    procs.append(worker)
    deadline = time.monotonic() + 60
    while ' ready.' not in worker.stderr:
        assert time.monotonic() < deadline and worker.proc.poll() is None, worker.stderr
        time.sleep(0.05)
    return worker


def celery_env(tmp_path, writer):
    return {'PYTHONPATH': os.pathsep.join([PYTHON_DIR, SCRIPTS]), 'LOGFUNNEL_ENDPOINT': writer.endpoint,
            'CELERY_DIR': str(tmp_path / 'celery')}


def send(procs, tmp_path, writer, tasks, records, pause=0.0):
    sender = Proc([PYTHON, os.path.join(SCRIPTS, 'celery_send.py'), str(tasks), str(records), str(pause)],
                  cwd=str(tmp_path), env=celery_env(tmp_path, writer))
    procs.append(sender)
    assert sender.wait_event('sent')['tasks'] == tasks
    assert sender.wait() == 0, sender.stderr
    return sender


def succeeded(worker):
    return worker.stderr.count('] succeeded in ')


def wait_succeeded(worker, tasks, timeout=60.0):
    deadline = time.monotonic() + timeout
    while succeeded(worker) < tasks:
        assert time.monotonic() < deadline and worker.proc.poll() is None, worker.stderr
        time.sleep(0.05)


def warm_stop(worker):
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, worker.stderr
    assert 'Traceback' not in worker.stderr, worker.stderr
    assert 'LOGFUNNEL' not in worker.stderr and 'lost' not in worker.stderr, worker.stderr


def test_children_replaced_every_2_tasks(writer_factory, procs, tmp_path):
    """With the writer up throughout and --max-tasks-per-child 2: every record once. Each child
    ends in billiard's os._exit() after its second task, where neither atexit nor multiprocessing's
    finalizers run, within milliseconds (the pool's SIGTERM cuts the second it sleeps there short;
    a child replaced past worker_max_memory_per_child ends the same way)."""
    writer = writer_factory()
    send(procs, tmp_path, writer, TASKS, RECORDS)
    worker = start_worker(procs, tmp_path, writer, '--max-tasks-per-child', '2')
    wait_succeeded(worker, TASKS)
    warm_stop(worker)
    assert writer.stop(spool_taken=True)['records'] == TOTAL
    assert_clean(verify(writer.file, '--expect-total', str(TOTAL)), TOTAL, None)
    assert pids_in(writer.file) >= TASKS // 2  # the children were replaced


def test_writer_down_first_seconds(writer_factory, procs, tmp_path):
    """The writer started 3 s after the worker is ready (its tasks run meanwhile): the records
    wait in the children (the spool meanwhile) and all reach the file once."""
    writer = writer_factory(start=False)
    send(procs, tmp_path, writer, TASKS, RECORDS)
    worker = start_worker(procs, tmp_path, writer)
    started = time.monotonic()
    wait_succeeded(worker, TASKS)
    time.sleep(max(0.0, 3.0 - (time.monotonic() - started)))  # the writer stays down 3 s
    writer.start()
    writer.wait_for_lines(TOTAL)
    warm_stop(worker)
    assert writer.stop(spool_taken=True)['records'] == TOTAL
    assert_clean(verify(writer.file, '--expect-total', str(TOTAL)), TOTAL, None)


def logged(tmp_path):
    """What the tasks have logged so far (a byte per record, scripts/celery_app.py)."""
    progress = tmp_path / 'celery' / 'progress'
    return {int(n): os.path.getsize(progress / n) for n in os.listdir(progress)} if progress.is_dir() else {}


@pytest.mark.parametrize('shutdown', ['warm', 'cold-sigquit-writer-stopped'])
def test_shutdown_while_tasks_run(writer_factory, procs, tmp_path, shutdown):
    """The worker's shutdown while its 4 children run tasks (records 5 ms apart):
    warm (SIGTERM: the tasks run to their end), cold (SIGQUIT, with the writer stopped by SIGSTOP
    from just before it until the worker has ended: the pool's SIGTERM makes billiard's handler
    in each child raise SystemExit in its task, and the child, closing at worker_process_shutdown,
    spools what has no receipt). Every record logged is in the file once, none reported
    lost; the worker ends with 0, no traceback."""
    writer = writer_factory()
    records = 200 if shutdown == 'warm' else 1000  # cold: cut short, however slow the machine
    send(procs, tmp_path, writer, 8, records, 0.005)
    worker = start_worker(procs, tmp_path, writer)
    deadline = time.monotonic() + 30
    while len([n for n in logged(tmp_path).values() if n >= 20]) < 4:
        assert time.monotonic() < deadline and worker.proc.poll() is None, worker.stderr
        time.sleep(0.02)
    assert writer.proc is not None
    if shutdown == 'warm':
        worker.proc.send_signal(signal.SIGTERM)
    else:
        writer.proc.proc.send_signal(signal.SIGSTOP)
        worker.proc.send_signal(signal.SIGQUIT)
    code = worker.wait(60)
    if shutdown == 'cold-sigquit-writer-stopped':
        writer.proc.proc.send_signal(signal.SIGCONT)
    assert code == 0, worker.stderr
    assert ('Warm shutdown' if shutdown == 'warm' else 'Cold shutdown') in worker.stderr
    assert 'Traceback' not in worker.stderr and 'LOGFUNNEL' not in worker.stderr and 'lost' not in worker.stderr, worker.stderr
    counts = logged(tmp_path)
    total = sum(counts.values())
    if shutdown == 'warm':
        assert sorted(counts.values())[-4:] == [records] * 4  # the running tasks ended
    else:
        assert any(0 < n < records for n in counts.values()), counts  # tasks cut short
    assert writer.stop(spool_taken=True)['records'] == total
    assert_clean(verify(writer.file, '--expect-total', str(total)), total, 4)
