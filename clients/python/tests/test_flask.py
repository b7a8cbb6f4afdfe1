"""Flask's development server with werkzeug's reloader (Debian's python3-flask): the app runs in a
child that the reloader's parent SIGKILLs at once when the parent gets SIGTERM (the ``sys.exit(0)``
of werkzeug's handler unwinds ``subprocess.call()``, which kills its child): no hook of the child
runs, so only what it had handed to ZeroMQ by then is kept."""

import http.client
import json
import os

import pytest

from conftest import Proc, PYTHON, free_port, verify, wait_listening

REQUESTS = 50


def flask_available():
    try:
        import flask  # noqa: F401
    except ImportError:
        if os.environ.get('CI'):
            raise AssertionError('flask is not importable: install the Debian package python3-flask')
        pytest.skip('flask is not importable: install the Debian package python3-flask')


def get(port, path):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    try:
        conn.request('GET', path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.parametrize('stop', ['parent', 'group'])
def test_reloader_stopped_by_sigterm(writer_factory, procs, tmp_path, stop):
    """REQUESTS requests one at a time, then one that logs a record once the one before it is
    confirmed and sends SIGTERM to the reloader's parent alone (``kill <pid>``) or to the process
    group (a container's stop, systemd's) once that record is confirmed too, or 10 ms after it:
    before, that record was still gathered (for batch_delay, 20 ms, after the batch before it)
    and lost with the child, SIGKILLed at once (9 of 10 runs); now the reloader's child sends
    each record at once (batch_delay 0 there), and the file holds every record, 2 * REQUESTS + 2."""
    flask_available()
    writer = writer_factory()
    port = free_port()
    server = Proc([PYTHON, os.path.join(os.path.dirname(__file__), 'scripts', 'flask_app.py')], cwd=str(tmp_path),
                  env={'LOGFUNNEL_ENDPOINT': writer.endpoint, 'PORT': str(port)})
    procs.append(server)
    assert server.wait_event('serving')['batch_delay'] == 0
    wait_listening(port, server)  # the parent binds the socket, the child serves it
    for n in range(REQUESTS):
        assert get(port, '/?%d' % n) == 200
    try:
        get(port, '/stop?' + stop)  # answered or not: the child may be gone first
    except (OSError, http.client.HTTPException):
        pass
    assert server.wait(30) == 0, server.stderr
    total = 2 * REQUESTS + 2
    try:
        writer.wait_for_lines(total, 15)
    except AssertionError as err:
        raise AssertionError('%s\nserver stdout: %s\nserver stderr:\n%s' % (err, server.stdout, server.stderr)) from None
    assert writer.stop(spool_taken=True)['records'] == total, server.stderr
    with open(writer.file, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    assert sorted((r['request'], r['msg']) for r in records) == \
        sorted([(str(n), msg) for n in range(REQUESTS) for msg in ('start', 'done')] + [(stop, 'start'), (stop, 'done')])
    report = verify(writer.file, '--expect-total', str(total))
    assert {k: report[k] for k in ('lines', 'gaps', 'duplicates', 'reordered', 'torn', 'ok')} == \
        {'lines': total, 'gaps': 0, 'duplicates': 0, 'reordered': 0, 'torn': 0, 'ok': True}
