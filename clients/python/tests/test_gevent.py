"""Green threads: gunicorn's gevent and eventlet workers (Debian's gunicorn, python3-gevent,
python3-eventlet), and programs that monkey-patch before or after ``import logfunnel``. The
package's threads and what they share with the logging side are real OS ones (logfunnel/_native.py).

Before: the sender was a greenlet whose ZeroMQ poll held the hub for up to receipt_timeout (5 s)
at a time. gunicorn -k gevent, 4 workers: every worker served one request, stopped, and was
killed at gunicorn's timeout (WORKER TIMEOUT, SIGKILL) every 30 s; a program logging from 50
greenlets did not end."""

import importlib.util
import json
import os
import re
import signal

import pytest

from conftest import PYTHON, Proc, assert_clean, count_lines, verify
from test_gunicorn import WORKERS, serve_through_a_reload

SCRIPT = os.path.join(os.path.dirname(__file__), 'scripts', 'green_log.py')
GREENLETS = 50
PER = 200


def green_library(name):
    """Skips without ``name`` (fails under CI, where .ci/run installs it, as test_gunicorn does).
    Not imported here: the children import it."""
    if importlib.util.find_spec(name) is None:
        missing = '%s is missing: install the Debian package python3-%s' % (name, name)
        if os.environ.get('CI'):
            raise AssertionError(missing)
        pytest.skip(missing)


def run_green_script(script, library, writer_factory, procs, tmp_path):
    """A writer, and scripts/``script`` run against it under ``library`` (skipped without it)."""
    green_library(library)
    writer = writer_factory()
    p = Proc([PYTHON, os.path.join(os.path.dirname(__file__), 'scripts', script), writer.endpoint, library],
             cwd=str(tmp_path))
    procs.append(p)
    return writer, p


@pytest.mark.parametrize('library', ['gevent', 'eventlet'])
@pytest.mark.parametrize('preload', [False, True], ids=['patched-then-imported', 'imported-then-patched'])
def test_gunicorn_green_workers_through_a_reload(writer_factory, procs, tmp_path, library, preload):
    # Without --preload each worker patches, then imports the app (and logfunnel); with it the
    # master imported both and made the handler, and each worker patches after the fork.
    green_library(library)
    stderr = serve_through_a_reload(writer_factory(), procs, tmp_path, ['-k', library, *(['--preload'] if preload else [])],
                                    listener_closed=library == 'eventlet')
    assert 'WORKER TIMEOUT' not in stderr and 'signal 9' not in stderr, stderr
    # gunicorn's own tracebacks of a connection reset after the reload (LISTENER_CLOSED) aside, nothing.
    ours = re.sub(r'\[ERROR\] Socket error processing request\.\nTraceback.*?\n(?=\[)', '', stderr, flags=re.S)
    assert re.search(r'LOGFUNNEL_ERR_\w+|Traceback|--- Logging error ---|\[ERROR\]', ours) is None, stderr
    assert stderr.count('Booting worker') == 2 * WORKERS, stderr  # the first ones and the reload's: none replaced


@pytest.mark.parametrize('library', ['gevent', 'eventlet'])
@pytest.mark.parametrize('order', ['before', 'after'])
def test_patched_program_logs_from_green_threads_and_ends(writer_factory, procs, tmp_path, library, order):
    # 'before': monkey-patched, then `import logfunnel`; 'after': the handler made and a record
    # sent (the sender started), then patched. 50 green threads log 200 records each, a ticker
    # measures how long the hub went without running it, then the program ends (its exit hook
    # waits for the receipts).
    green_library(library)
    writer = writer_factory()
    p = Proc([PYTHON, SCRIPT, writer.endpoint, library, order, str(PER)], cwd=str(tmp_path))
    procs.append(p)
    done = p.wait_event('done', timeout=60)
    assert p.wait(30) == 0, p.stderr
    assert p.stderr == ''
    total = GREENLETS * PER + (order == 'after')
    assert done['records'] == total
    # The hub runs the ticker every 5 ms; the sender's poll held it 5 s at a time before.
    assert done['max_gap'] < 2.0, done
    writer.wait_for_lines(total)
    assert writer.stop()['records'] == total and count_lines(writer.file) == total
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', str(total)), total, 1)
    with open(writer.file, encoding='utf-8') as f:
        assert len({json.loads(line)['msg'] for line in f}) == total


@pytest.mark.parametrize('library', ['gevent', 'eventlet'])
def test_fork_in_a_green_thread(writer_factory, procs, tmp_path, library):
    """A child forked in a threading.Thread of a patched program (a green thread) goes on in its
    main green thread once that one returns: it logs 100 records and ends by itself. Before,
    under gevent, the package took the green thread for the child's main thread (threading's
    main_thread() says so there, as after a fork from an OS thread), waited for it, then ended the
    process with os._exit(0) while the main one still ran: 3 to 5 of its 100 records, no 'child
    end', status 0 (eventlet's child has a _MainThread of its own: not affected). Now all 100,
    with the parent's one."""
    writer, p = run_green_script('green_fork.py', library, writer_factory, procs, tmp_path)
    child = p.wait_event('child end')
    assert p.wait_event('child ended')['status'] == 0
    assert p.wait(60) == 0, p.stderr
    writer.wait_for_lines(101)
    assert writer.stop()['records'] == 101
    with open(writer.file, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    assert [r['n'] for r in records if r['pid'] == child['pid']] == list(range(100))
    report = verify(writer.file, '--key', 'pid', '--expect-total', '101')
    assert {k: report[k] for k in ('lines', 'gaps', 'duplicates', 'reordered', 'torn', 'ok')} == \
        {'lines': 101, 'gaps': 0, 'duplicates': 0, 'reordered': 0, 'torn': 0, 'ok': True}
    # eventlet's own, with no handler at all: the forked child's green thread leaves threading's
    # _active without its entry (threading._delete: KeyError).
    eventlet_own = r'Traceback \(most recent call last\):\n.*\n    del _active\[get_ident\(\)\]\n.*KeyError: \d+\n'
    assert p.stderr == '' or (library == 'eventlet' and re.fullmatch(eventlet_own, p.stderr, re.S)), p.stderr


@pytest.mark.parametrize('library', ['gevent', 'eventlet'])
def test_green_and_os_threads_log_at_once(writer_factory, procs, tmp_path, library):
    """A patched program whose green threads and jobs in real OS threads (gevent's threadpool,
    eventlet.tpool) log at once through one handler. Before, the lock logging holds over the
    handler's emit was threading's, the library's once patched: an OS thread waiting for it while
    a green thread held it never woke, and the program hung (gevent: 2,204 of 16,000 records, 1
    of the 8 jobs ended after 20 s; eventlet: 1 record; a FileHandler's own lock hangs it the
    same way). Now it is a real one (logfunnel/_native.py): all 16,000, each writer's records in
    order."""
    writer, p = run_green_script('green_threadpool.py', library, writer_factory, procs, tmp_path)
    assert p.wait_event('done')['ended'] == 8, p.stderr
    assert p.wait(60) == 0, p.stderr
    writer.wait_for_lines(16000)
    assert writer.stop()['records'] == 16000
    with open(writer.file, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    by_who = {}
    for r in records:
        by_who.setdefault(r['who'], []).append(r['n'])
    assert by_who == {'%s %d' % (kind, k): list(range(2000)) for kind in ('green', 'real') for k in range(4)}
    report = verify(writer.file, '--expect-total', '16000')
    assert {k: report[k] for k in ('lines', 'gaps', 'duplicates', 'reordered', 'torn', 'ok')} == \
        {'lines': 16000, 'gaps': 0, 'duplicates': 0, 'reordered': 0, 'torn': 0, 'ok': True}
    assert p.stderr == ''


@pytest.mark.parametrize('library', ['gevent', 'eventlet'])
def test_imported_in_a_green_thread_then_sigterm(writer_factory, procs, tmp_path, library):
    """logfunnel imported, and its handler made, in a green thread other than the main one of a
    patched program; the main one logs 100 records (gathered for batch_delay 1 s), then SIGTERM.
    Before, under gevent, the package took threading's ident of the main thread for the OS one
    (the main greenlet's there): no thread was the main one, the handler of SIGTERM was never
    installed, and the process ended with the 100 records lost (eventlet leaves threading's
    ident the OS one: not affected). Now they go to the spool, and the process still ends by
    SIGTERM."""
    writer, p = run_green_script('green_import.py', library, writer_factory, procs, tmp_path)
    assert p.wait_event('logged')['sigterm'] == '_on_fatal_signal'
    p.proc.send_signal(signal.SIGTERM)
    assert p.wait(30) == -signal.SIGTERM, p.stderr
    writer.wait_for_lines(100)
    assert writer.stop(spool_taken=True)['records'] == 100
    with open(writer.file, encoding='utf-8') as f:
        assert [json.loads(line)['n'] for line in f] == list(range(100))
    assert p.stderr == ''
