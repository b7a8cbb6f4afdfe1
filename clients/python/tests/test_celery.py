"""Celery (Debian's python3-celery) as a user runs it: a prefork worker (`celery -A celery_app
worker --concurrency 4 --pool prefork`) whose logging is set up by a ``setup_logging`` receiver
with dictConfig (scripts/celery_app.py), kombu's filesystem transport as the broker, a producer
script sending the tasks (scripts/celery_send.py). Every task's records in the file once."""

import os
import signal
import time

import pytest

from conftest import PYTHON, PYTHON_DIR, Proc, assert_clean, verify

SCRIPTS = os.path.join(os.path.dirname(__file__), 'scripts')
TASKS = 20
RECORDS = 200
TOTAL = TASKS * RECORDS


def require_celery():
    try:
        import celery  # noqa: F401
    except ImportError:
        if os.environ.get('CI'):
            raise AssertionError('celery is not importable: install the Debian package python3-celery')
        pytest.skip('celery is not importable: install the Debian package python3-celery')


def start_worker(procs, tmp_path, writer, *args, env=None):
    """The worker, once it says it is ready (its consumer is connected to the broker)."""
    require_celery()
    worker = Proc([PYTHON, '-m', 'celery', '-A', 'celery_app', 'worker', '--concurrency', '4', '--pool', 'prefork',
                   '--loglevel', 'INFO', *args], cwd=str(tmp_path), env=celery_env(tmp_path, writer, env))
    procs.append(worker)
    deadline = time.monotonic() + 60
    while ' ready.' not in worker.stderr:
        assert time.monotonic() < deadline and worker.proc.poll() is None, worker.stderr
        time.sleep(0.05)
    return worker


def celery_env(tmp_path, writer, extra=None):
    return {'PYTHONPATH': os.pathsep.join([PYTHON_DIR, SCRIPTS]), 'LOGFUNNEL_ENDPOINT': writer.endpoint,
            'CELERY_DIR': str(tmp_path / 'celery'), **(extra or {})}


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


@pytest.mark.parametrize('recycle', [['--max-tasks-per-child', '2']], ids=['max-tasks-per-child-2'])
def test_tasks_records_once(writer_factory, procs, tmp_path, recycle):
    """With the writer up: every record once, the children replaced after every 2 tasks (each
    ends in billiard's os._exit() after its second task)."""
    writer = writer_factory()
    worker = start_worker(procs, tmp_path, writer, *recycle)
    send(procs, tmp_path, writer, TASKS, RECORDS)
    wait_succeeded(worker, TASKS)
    warm_stop(worker)
    assert writer.stop(spool_taken=True)['records'] == TOTAL
    assert_clean(verify(writer.file, '--expect-total', str(TOTAL)), TOTAL, None)
