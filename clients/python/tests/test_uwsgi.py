"""uWSGI (Debian's uwsgi-core and uwsgi-plugin-python3): 4 workers forked from a master that
loaded the app (dictConfig at import, a record logged there), a graceful reload (SIGHUP) in the
middle of the requests, then a stop (SIGINT). uWSGI forks without PyOS_AfterFork_Child, so no
os.register_at_fork hook runs in its workers. Without Python threads (uWSGI's default) and with
--enable-threads: every request answered, its record in the file exactly once, and a worker
without threads says LOGFUNNEL_ERR_NO_THREADS once."""

import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import time

import pytest

from conftest import Proc, assert_clean, free_port, verify

REQUESTS = 400
WORKERS = 4
PLUGIN = '/usr/lib/uwsgi/plugins/python3_plugin.so'
SCRIPT = os.path.join(os.path.dirname(__file__), 'scripts', 'uwsgi_app.py')
SPAWNED = 'spawned uWSGI worker'


def uwsgi_command():
    if shutil.which('uwsgi') and os.path.exists(PLUGIN):
        return ['uwsgi', '--plugin', 'python3']
    if os.environ.get('CI'):
        raise AssertionError('uWSGI is missing: install the Debian packages uwsgi-core and uwsgi-plugin-python3')
    pytest.skip('uWSGI is missing: install the Debian packages uwsgi-core and uwsgi-plugin-python3')


def get(port, n, failed):
    """The status of request ``n``; once one failed (a hung worker: it times out), the rest are
    not sent, so that a failing run ends in seconds, not one timeout after another."""
    if failed:
        return 'not sent'
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    try:
        conn.request('GET', '/?%d' % n)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError as err:
        failed.append(n)
        return type(err).__name__
    finally:
        conn.close()


def wait_until(condition, seconds, server, what):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline and server.proc.poll() is None, '%s: not within %d s\n%s' % (what, seconds, server.stderr)
        time.sleep(0.05)


def idle(stats):
    """True when uWSGI's stats server says every worker is idle (no request, no uWSGI signal)."""
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(stats)
            data = b''
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return False
    workers = json.loads(data)['workers']
    return len(workers) == WORKERS and all(w['status'] == 'idle' for w in workers)


def listening(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize('threads', [False, True], ids=['no-threads', 'enable-threads'])
def test_uwsgi_reload_and_stop(writer_factory, procs, tmp_path, threads):
    writer = writer_factory()
    port = free_port()
    stats = os.path.join(str(tmp_path), 'stats.sock')
    server = Proc([*uwsgi_command(), '--http-socket', '127.0.0.1:%d' % port, '--master', '--processes', str(WORKERS),
                   '--wsgi-file', SCRIPT, '--disable-logging', '--stats', stats, *(['--enable-threads'] if threads else [])],
                  cwd=str(tmp_path), env={'LOGFUNNEL_ENDPOINT': writer.endpoint})
    procs.append(server)
    wait_until(lambda: listening(port), 30, server, 'uWSGI listening')
    failed = []
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        first = list(ex.map(lambda n: get(port, n, failed), range(REQUESTS // 2)))
        spawned = server.stderr.count(SPAWNED)
        server.proc.send_signal(signal.SIGHUP)  # graceful reload: the master execs itself, loads the app again, forks anew
        during = list(ex.map(lambda n: get(port, n, failed), range(REQUESTS // 2, REQUESTS * 3 // 4)))
        wait_until(lambda: failed or server.stderr.count(SPAWNED) >= spawned + WORKERS, 60, server, 'the reload')
        last = list(ex.map(lambda n: get(port, n, failed), range(REQUESTS * 3 // 4, REQUESTS)))
    statuses = first + during + last
    assert statuses == [200] * REQUESTS, {s: statuses.count(s) for s in set(statuses)}
    # SIGINT is uWSGI's immediate stop: a worker still in a request (in uWSGI's books until its
    # clean-up after the response ends) runs no Python exit hook at all (uwsgi_python_atexit: "if
    # busy do not run atexit hooks"), so what it holds without a receipt is lost there, as at
    # SIGKILL (README, "uWSGI"). Stopped once every worker is idle, as here, each runs them.
    wait_until(lambda: idle(stats), 30, server, 'every worker idle')
    stop = time.monotonic()
    server.proc.send_signal(signal.SIGINT)
    assert server.wait(30) == 0, server.stderr
    assert time.monotonic() - stop < 10, server.stderr  # a hung worker is killed after --worker-reload-mercy, 60 s

    # The master's records ('app loaded', once before the reload and once after) are in the spool
    # as logged; the workers' by their sockets, or the spool at their end.
    try:
        writer.wait_for_lines(REQUESTS + 2)
    except AssertionError as err:
        raise AssertionError('%s\nspool: %s\nwriter stderr:\n%s\nuWSGI stderr:\n%s'
                             % (err, writer.spool_files(), writer.proc.stderr, server.stderr)) from None
    assert writer.stop(spool_taken=True)['records'] == REQUESTS + 2
    with open(writer.file, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    requests = [r for r in records if r['msg'] == 'request']
    assert sorted((r['request'] for r in requests), key=int) == [str(n) for n in range(REQUESTS)]
    master = [r for r in records if r['msg'] == 'app loaded']
    # The reload execs the master in place: one pid, seq from 0 in each life.
    assert [(r['pid'], r['seq']) for r in master] == [(master[0]['pid'], 0)] * 2
    workers = {r['pid'] for r in requests}
    assert master[0]['pid'] not in workers and len(workers) > WORKERS  # the reload replaced the workers
    # Each worker's records once, in order (verify tells processes by pid: the master's two lives
    # share one, so its records are left out here).
    worker_file = os.path.join(str(tmp_path), 'workers.log')
    with open(worker_file, 'w', encoding='utf-8') as f:
        f.writelines(json.dumps(r) + '\n' for r in requests)
    assert_clean(verify(worker_file, '--key', 'pid', '--expect-total', str(REQUESTS)), REQUESTS, len(workers))
    said = [line for line in server.stderr.splitlines() if line.startswith('logfunnel: ')]
    if threads:
        assert said == [], server.stderr
    else:
        # Once in each worker that logged, at its first record; nothing else.
        assert len(said) == len(workers) and all(line.startswith('logfunnel: LOGFUNNEL_ERR_NO_THREADS: ') for line in said), said


def test_uwsgi_request_end_sends(writer_factory, procs, tmp_path):
    """A request's records go to the writer when it ends, not a gathering window later: an
    immediate stop (SIGINT) of a worker uWSGI still counts as in a request runs no Python exit
    hook, and what was still gathered was lost. The application's own after-request hook, set
    before, still runs."""
    writer = writer_factory()
    port = free_port()
    hooked = os.path.join(str(tmp_path), 'hooked')
    server = Proc([*uwsgi_command(), '--http-socket', '127.0.0.1:%d' % port, '--master', '--processes', '1',
                   '--enable-threads', '--wsgi-file', os.path.join(os.path.dirname(__file__), 'scripts', 'uwsgi_hurry_app.py'),
                   '--disable-logging'],
                  cwd=str(tmp_path), env={'LOGFUNNEL_ENDPOINT': writer.endpoint, 'HOOK_FILE': hooked})
    procs.append(server)
    wait_until(lambda: listening(port), 30, server, 'uWSGI listening')
    for n in range(5):
        assert get(port, n, []) == 200
        # batch_delay is 1 s: gathered, the second and later records would come about 1 s after
        # the one before them.
        writer.wait_for_lines(n + 1, timeout=0.8)
    server.proc.send_signal(signal.SIGINT)
    assert server.wait(30) == 0, server.stderr
    assert writer.stop()['records'] == 5
    with open(hooked, encoding='utf-8') as f:
        assert f.read() == '.' * 5
