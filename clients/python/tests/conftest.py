"""Fixtures: the real Node writer (``node dist/cli/bin.js writer``, built by ``npm run build``),
``logfunnel verify``, and Python scripts run with this package on the path. Every child is
ended when its test ends, pass or fail."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
PYTHON_DIR = os.path.join(ROOT, 'clients', 'python')
BIN = os.path.join(ROOT, 'dist', 'cli', 'bin.js')
# The writer made slow for tests: it pauses <ms> after each message (test/fixtures/slow-writer.ts).
SLOW_WRITER = os.path.join(ROOT, 'dist', 'test', 'fixtures', 'slow-writer.js')
NODE = os.environ.get('LOGFUNNEL_NODE') or shutil.which('node') or 'node'
PYTHON = sys.executable
sys.path.insert(0, PYTHON_DIR)  # the package from these sources, as PYTHONPATH gives the children


class Proc:
    """A child whose stdout lines are read by a thread; stderr is collected."""

    def __init__(self, args: List[str], cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> None:
        full_env = dict(os.environ, PYTHONPATH=PYTHON_DIR, PYTHONUNBUFFERED='1')
        full_env.update(env or {})
        self.args = args
        self.proc = subprocess.Popen(args, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.lines: 'queue.Queue[Optional[str]]' = queue.Queue()
        self.stdout: List[str] = []
        self.stderr_chunks: List[bytes] = []
        threading.Thread(target=self._read_out, daemon=True).start()
        self._err_thread = threading.Thread(target=self._read_err, daemon=True)
        self._err_thread.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode('utf-8', 'replace').rstrip('\n')
            self.stdout.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr_chunks.append(raw)

    @property
    def stderr(self) -> str:
        return b''.join(self.stderr_chunks).decode('utf-8', 'replace')

    def wait_event(self, event: str, timeout: float = 30.0) -> Dict[str, Any]:
        """The first JSON line on stdout with ``"event": event``, within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('no %r line within %.0f s from %s\nstderr:\n%s' % (event, timeout, self.args, self.stderr))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError('%s exited (%s) before a %r line\nstderr:\n%s' % (self.args, self.proc.wait(), event, self.stderr))
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and obj.get('event') == event:
                return obj

    def wait(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout)
        self._err_thread.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


class Writer:
    """A running ``logfunnel writer`` on ``<dir>/w.sock`` writing ``<dir>/app.log``."""

    def __init__(self, procs: List[Proc], directory: str, extra: List[str]) -> None:
        self.dir = directory
        self.endpoint = 'ipc://%s' % os.path.join(directory, 'w.sock')
        self.file = os.path.join(directory, 'app.log')
        self.extra = extra
        self._procs = procs
        self.proc: Optional[Proc] = None

    def start(self, args: Optional[List[str]] = None, slow_ms: Optional[int] = None,
              env: Optional[Dict[str, str]] = None) -> 'Writer':
        """Starts the writer and waits for its ready line; with ``slow_ms``, one that pauses that
        long after each message, as a slow disk would hold it; ``env`` added to its environment."""
        command = [NODE, BIN, 'writer'] if slow_ms is None else [NODE, SLOW_WRITER, str(slow_ms)]
        self.proc = Proc([*command, '--file', self.file, '--endpoint', self.endpoint,
                          '--spool-poll-ms', '50', '--stats-interval-ms', '0', *self.extra, *(args or [])], env=env)
        self._procs.append(self.proc)
        self.proc.wait_event('ready')
        return self

    def stop(self, spool_taken: bool = False, spool_timeout: float = 30.0) -> Dict[str, Any]:
        """SIGTERM; the writer's ``stopped`` summary; asserts exit 0. With ``spool_taken``, first
        waits (at most ``spool_timeout`` s) until no spool file waits: a client's close() may end
        while the writer is away (judged so by ``spool_after``), the rest in the spool, and a
        writer stopped before it took those files leaves them to the next one."""
        assert self.proc is not None
        if spool_taken:
            self.wait_spool_taken(spool_timeout)
        self.proc.proc.send_signal(signal.SIGTERM)
        summary = self.proc.wait_event('stopped', 60)
        assert self.proc.wait() == 0, self.proc.stderr
        return summary

    def wait_spool_taken(self, timeout: float = 30.0) -> None:
        """Until the writer has taken every spool file (it removes each once in the file), at most ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self.spool_files():
            if time.monotonic() > deadline:
                raise AssertionError('the writer has not taken the spool after %.0f s: still waiting in %s: %s\nwriter stderr:\n%s'
                                     % (timeout, os.path.join(self.dir, 'w.sock.spool'), ', '.join(self.spool_files()),
                                        self.proc.stderr if self.proc is not None else ''))
            time.sleep(0.05)

    def spool_files(self) -> List[str]:
        spool = os.path.join(self.dir, 'w.sock.spool')
        return sorted(n for n in os.listdir(spool) if n.endswith('.spool') or n.endswith('.spool.tmp')) if os.path.isdir(spool) else []

    def wait_for_lines(self, count: int, timeout: float = 30.0) -> None:
        """Until the file holds ``count`` lines (deadline-bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = count_lines(self.file)
            if lines >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError('%s holds %d lines, not %d, after %.0f s' % (self.file, lines, count, timeout))
            time.sleep(0.05)


def free_port() -> int:
    """A loopback TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, server: 'Proc', seconds: float = 30) -> None:
    """Returns once something accepts on 127.0.0.1:``port``; fails if ``server`` ends first or
    after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline and server.proc.poll() is None, server.stderr
            time.sleep(0.05)


def count_lines(path: str) -> int:
    try:
        with open(path, 'rb') as f:
            return f.read().count(b'\n')
    except FileNotFoundError:
        return 0


@pytest.fixture
def procs() -> Any:
    started: List[Proc] = []
    yield started
    for p in started:
        p.kill()


@pytest.fixture
def writer_factory(tmp_path: Any, procs: List[Proc]) -> Callable[..., Writer]:
    def make(extra: Optional[List[str]] = None, start: bool = True) -> Writer:
        w = Writer(procs, str(tmp_path), extra or [])
        return w.start() if start else w
    return make


@pytest.fixture
def run_python(procs: List[Proc], tmp_path: Any) -> Callable[..., Proc]:
    """Starts ``python3 <script>`` (a file under tests/scripts or ``-c`` code) with the package on the path."""
    def start(script: str, *args: str, env: Optional[Dict[str, str]] = None) -> Proc:
        path = os.path.join(os.path.dirname(__file__), 'scripts', script)
        p = Proc([PYTHON, path, *args], cwd=str(tmp_path), env=env)
        procs.append(p)
        return p
    return start


def verify(path: str, *args: str) -> Dict[str, Any]:
    """``logfunnel verify --json``: the report, with its exit code as ``code``."""
    done = subprocess.run([NODE, BIN, 'verify', '--json', path, *args], capture_output=True, timeout=60)
    report = json.loads(done.stdout)
    report['code'] = done.returncode
    return report


# What a close that ended with no writer ever reached says, once per producer (through
# handleError, or on stderr for a Client of its own): LOGFUNNEL_ERR_CONNECT with the records it spooled.
UNREACHED = re.compile(r'--- Logging error ---\n(?:(?!--- Logging error ---).)*?\nlogfunnel\.errors\.ConnectError: '
                       r'LOGFUNNEL_ERR_CONNECT: [^\n]*closed before connect_timeout[^\n]*\n.*?\nArguments: \(\)\n'
                       r'|logfunnel: LOGFUNNEL_ERR_CONNECT: [^\n]*closed before connect_timeout[^\n]*\n', re.S)


def assert_unreached_reported(stderr: str, closes: Any) -> None:
    """``stderr`` holds ``closes`` (a count, or a range of them) reports of a close that ended with
    no writer ever reached, and nothing else."""
    reports = len(UNREACHED.findall(stderr))
    assert (reports in closes if isinstance(closes, range) else reports == closes), stderr
    assert UNREACHED.sub('', stderr) == '', stderr


# For a test script (after `import logfunnel._sender as sender`): `tries` gets what each sender
# session raised (its errno), the session itself unchanged.
COUNT_SESSION_FAILURES = '''tries = []  # what each session raised
session = sender.SenderThread._session

def counted(self):
    try:
        return session(self)
    except Exception as err:
        tries.append(getattr(err, 'errno', None))
        raise

sender.SenderThread._session = counted
'''

CLEAN = {'torn': 0, 'gaps': 0, 'duplicates': 0, 'reordered': 0, 'missing': 0, 'extra': 0, 'ok': True}


def assert_clean(report: Dict[str, Any], lines: int, producers: Optional[int]) -> None:
    """Every record once, in order: exact counts. ``producers`` None: a pool's tasks may share
    a process, so the count of processes that logged is not fixed (the file's pids are)."""
    got = {k: report.get(k) for k in ('lines', 'producers', *CLEAN)}
    if producers is None:
        producers = report.get('producers')
    assert got == {'lines': lines, 'producers': producers, **CLEAN}, report.get('examples')


def pids_in(path: str) -> int:
    with open(path, encoding='utf-8') as f:
        return len({json.loads(line)['pid'] for line in f})


@pytest.fixture
def run_code(procs: List[Proc], tmp_path: Any) -> Callable[..., Proc]:
    """Starts ``python3 -c <code> args...`` with the package on the path."""
    def start(code: str, *args: str, env: Optional[Dict[str, str]] = None) -> Proc:
        p = Proc([PYTHON, '-c', code, *args], cwd=str(tmp_path), env=env)
        procs.append(p)
        return p
    return start


def pytest_runtest_logreport(report: Any) -> None:
    """With LOGFUNNEL_PYTEST_REPORT set, one JSON line per test outcome (test/python.test.ts
    reports each pytest test as a test of its own in `npm test`'s count)."""
    path = os.environ.get('LOGFUNNEL_PYTEST_REPORT')
    if not path or (report.when != 'call' and report.outcome == 'passed'):
        return
    with open(path, 'a', encoding='utf-8') as f:
        f.write(json.dumps({'id': report.nodeid, 'when': report.when, 'outcome': report.outcome,
                            'detail': str(report.longrepr) if report.failed else ''}) + '\n')


def assert_reported_once(stderr: str, code: str) -> None:
    """``stderr`` holds one report of logfunnel's (LogfunnelHandler.handleError's one line, or a
    Client's), with ``code``, and no report of logging's own."""
    said = [line for line in stderr.splitlines() if line.startswith('logfunnel: ')]
    assert len(said) == 1 and said[0].startswith('logfunnel: %s: ' % code), stderr
    assert '--- Logging error ---' not in stderr, stderr


# The end of a child program that sends itself SIGUSR1 `kicks` times, one at a time, while the
# main thread logs through `main_log`; the signal handler logs through `sig_log` (test_seq.py,
# test_seq_shared.py). Prints {"event":"done","main":<records the main thread logged>,"caught":<signals>}.
SIGNAL_KICKS = '''caught = [0]

def on_usr1(signum, frame):
    caught[0] += 1
    sig_log.info('from the signal handler %d', caught[0])

signal.signal(signal.SIGUSR1, on_usr1)

def kicker():
    # One signal at a time: two pending at once would be run once.
    deadline = time.monotonic() + 30
    for k in range(kicks):
        os.kill(os.getpid(), signal.SIGUSR1)
        while caught[0] <= k and time.monotonic() < deadline:
            time.sleep(0.0002)

t = threading.Thread(target=kicker)
t.start()
main = 0
while t.is_alive():
    main_log.info('main %d', main)
    main += 1
print(json.dumps({'event': 'done', 'main': main, 'caught': caught[0]}), flush=True)
'''


def run_signal_kicks(writer, run_code, script, kicks):
    """Runs a SIGNAL_KICKS program against `writer` and stops the writer: asserts the program
    ended cleanly with every signal caught, and every record in the file once, verify clean.
    Returns the records logged."""
    p = run_code(script, writer.endpoint, str(kicks))
    done = p.wait_event('done', timeout=60)
    assert p.wait() == 0 and p.stderr == ''
    assert done['caught'] == kicks
    total = done['main'] + kicks
    writer.wait_for_lines(total)
    summary = writer.stop()
    assert summary['records'] == total and count_lines(writer.file) == total
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', str(total)), total, 1)
    return total


# A child program's lines that open /dev/null until no descriptor is left, in `hog` (needs `os`;
# test_context.py, test_exit.py).
TAKE_ALL_DESCRIPTORS = '''hog = []
try:
    while True:
        hog.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
'''
