"""gunicorn (Debian's) with 4 sync workers, a graceful reload (HUP) in the middle of 2,000
requests: every request's record in the file exactly once."""

import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import sys
import time

import pytest

from conftest import Proc, free_port, verify

REQUESTS = 2000
WORKERS = 4


def gunicorn_command():
    if shutil.which('gunicorn') or os.path.exists('/usr/bin/gunicorn'):
        return [sys.executable, '-m', 'gunicorn']
    if os.environ.get('CI'):
        raise AssertionError('gunicorn is missing: install the Debian package gunicorn')
    pytest.skip('gunicorn is missing: install the Debian package gunicorn')


def get(port, n):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    conn.request('GET', '/?%d' % n)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


def test_gunicorn_graceful_reload(writer_factory, procs, tmp_path):
    writer = writer_factory()
    port = free_port()
    server = Proc([*gunicorn_command(), '--workers', str(WORKERS), '--bind', '127.0.0.1:%d' % port,
                   '--chdir', os.path.join(os.path.dirname(__file__), 'scripts'), '--graceful-timeout', '20', 'wsgi_app:app'],
                  cwd=str(tmp_path), env={'LOGFUNNEL_ENDPOINT': writer.endpoint})
    procs.append(server)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and server.proc.poll() is None, server.stderr
            time.sleep(0.05)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        first = list(ex.map(lambda n: get(port, n), range(REQUESTS // 2)))
        booted = server.stderr.count('Booting worker')
        server.proc.send_signal(signal.SIGHUP)
        # A quarter while the master replaces its workers, the last quarter once the new ones are
        # up (their boot lines are the readiness signal): records from old and new workers.
        during = list(ex.map(lambda n: get(port, n), range(REQUESTS // 2, REQUESTS * 3 // 4)))
        while server.stderr.count('Booting worker') < booted + WORKERS:
            assert time.monotonic() < deadline + 60 and server.proc.poll() is None, server.stderr
            time.sleep(0.05)
        last = list(ex.map(lambda n: get(port, n), range(REQUESTS * 3 // 4, REQUESTS)))
    assert first + during + last == [200] * REQUESTS
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait(60) == 0, server.stderr
    writer.wait_for_lines(REQUESTS)
    assert writer.stop()['records'] == REQUESTS
    with open(writer.file, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    assert sorted((r['request'] for r in records), key=int) == [str(n) for n in range(REQUESTS)]
    # The reload replaced the workers: records from the old ones and the new ones.
    assert len({r['pid'] for r in records}) > WORKERS
    report = verify(writer.file, '--expect-total', str(REQUESTS))
    assert {k: report[k] for k in ('lines', 'gaps', 'duplicates', 'reordered', 'torn', 'ok')} == \
        {'lines': REQUESTS, 'gaps': 0, 'duplicates': 0, 'reordered': 0, 'torn': 0, 'ok': True}
    assert 'lost' not in server.stderr
