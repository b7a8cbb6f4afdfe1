"""What close() says when it ends without every receipt, in the Node producer's words and codes,
once, through logging's handleError (one line on stderr):

- the writer away (stopped: it answers nothing) and every record in the spool:
  LOGFUNNEL_ERR_CLOSE_TIMEOUT "close ended before its N ms deadline: the writer does not answer:
  M records without a receipt went to the spool in DIR, where the writer ingests them" (before,
  nothing was said);
- a spool directory that is full (ENOSPC, a real tmpfs): LOGFUNNEL_ERR_CLOSE_TIMEOUT with the
  count and the spool's failure, the records sent before it said "may be lost" (the stopped writer
  writes them once it goes on); before, a bare "logfunnel: OSError: [Errno 28] No space left on
  device" line beside a report that called them lost;
- an ipc endpoint this process may not use (permission denied): LOGFUNNEL_ERR_CONNECT with the
  reason and the count, at once (before, close() waited out close_timeout for a connection that
  libzmq retries for ever)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

from conftest import BIN, NODE, PYTHON, Proc, assert_clean, count_lines, verify

N = 100
DEADLINE = 10.0

# The end of the scripts below: N records logged through `h` (on logger `log`), then close()
# timed, its stats printed.
LOG_AND_CLOSE = '''for i in range(%d):
    log.info('record %%d', i)
started = time.monotonic()
h.close()
print(json.dumps({'event': 'done', 'close_s': time.monotonic() - started, 'stats': h.client.stats}), flush=True)
''' % N

STOPPED = '''import json, logging, os, signal, sys, time
import logfunnel
opts = json.loads(sys.argv[3])
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', **opts)
log = logging.getLogger('app'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
log.info('confirmed')
h.flush()
os.kill(int(sys.argv[2]), signal.SIGSTOP)
''' + LOG_AND_CLOSE


def test_writer_away_close_reports_the_records_it_spooled(writer_factory, run_code, tmp_path):
    writer = writer_factory()
    p = run_code(STOPPED, writer.endpoint, str(writer.proc.proc.pid), json.dumps({'close_timeout': DEADLINE}))
    try:
        done = p.wait_event('done', 3 * DEADLINE)
    finally:
        writer.proc.proc.send_signal(signal.SIGCONT)
    assert p.wait() == 0, p.stderr
    assert done['close_s'] < DEADLINE / 2, done
    stats = done['stats']
    assert (stats['records'], stats['confirmed'], stats['spooled_records'], stats['lost']) == (N + 1, 1, N, 0), stats
    spool = os.path.join(str(tmp_path), 'w.sock.spool')
    assert p.stderr == ('logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: close ended before its 10000 ms deadline: the writer '
                        'does not answer: %d records without a receipt went to the spool in %s, where the writer '
                        'ingests them\n' % (N, spool)), p.stderr
    writer.wait_for_lines(N + 1)
    summary = writer.stop(spool_taken=True)
    assert summary['records'] == N + 1 and count_lines(writer.file) == N + 1
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', str(N + 1)), N + 1, 1)


def _cannot_mount() -> str:
    if os.geteuid() != 0 or shutil.which('mount') is None:
        return 'mounting a tmpfs needs root'
    probe = tempfile.mkdtemp(prefix='lf-mount-')
    try:
        done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], capture_output=True)
        if done.returncode != 0:
            return 'cannot mount a tmpfs here: %s' % done.stderr.decode(errors='replace').strip()
        subprocess.run(['umount', probe], check=True)
        return ''
    finally:
        os.rmdir(probe)


@pytest.fixture
def full_spool(tmp_path):
    """A spool directory on a 64 KiB tmpfs filled to the last byte."""
    why = _cannot_mount()
    if why:
        pytest.skip(why)
    mount = tmp_path / 'full'
    mount.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', str(mount)], check=True)
    try:
        spool = mount / 'spool'
        spool.mkdir(mode=0o700)
        fd = os.open(str(mount / 'filler'), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b'\0' * 512):
                pass
        except OSError:  # ENOSPC: full to the last block
            pass
        finally:
            os.close(fd)
        yield str(spool)
    finally:
        subprocess.run(['umount', '-l', str(mount)], check=True)


def test_a_full_spool_is_said_once_with_the_code_the_reason_and_the_count(writer_factory, run_code, full_spool):
    writer = writer_factory()
    p = run_code(STOPPED, writer.endpoint, str(writer.proc.proc.pid),
                 json.dumps({'close_timeout': 1.0, 'spool_dir': full_spool}))
    try:
        done = p.wait_event('done', 30)
    finally:
        writer.proc.proc.send_signal(signal.SIGCONT)
    assert p.wait() == 0, p.stderr
    stats = done['stats']
    assert (stats['records'], stats['confirmed'], stats['spooled_records']) == (N + 1, 1, 0), stats
    assert (stats['lost'], stats['sent_unconfirmed']) == (N, N) and stats['spool_errors'] >= 1, stats
    assert p.stderr == ('logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: close deadline: %d records without a '
                        'receipt may be lost (the spool could not be written: ENOSPC: No space left on device '
                        '(spool directory %s)): %d of them were sent, and the writer writes '
                        'them if it has them\n' % (N, full_spool, N)), p.stderr
    # They were sent: the stopped writer held them in its socket, and writes them as it goes on.
    writer.wait_for_lines(N + 1)
    summary = writer.stop()
    assert summary['records'] == N + 1 and count_lines(writer.file) == N + 1
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', str(N + 1)), N + 1, 1)


FORBIDDEN = '''import json, logging, sys, time
import logfunnel
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], spool_dir=sys.argv[2], seq_key='seq', close_timeout=%r)
log = logging.getLogger('app'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
''' % DEADLINE + LOG_AND_CLOSE


def test_an_endpoint_this_process_may_not_use_ends_close_at_once(procs):
    """A socket this process's user may not connect to (another user's, mode 0600), and a spool
    it may not use either (writable by others: refused): close() ends at once, and says why with
    LOGFUNNEL_ERR_CONNECT, then the records lost with LOGFUNNEL_ERR_CLOSE_TIMEOUT, one line each.
    As root the child runs as nobody (root passes every permission check)."""
    top = tempfile.mkdtemp(prefix='lf-forbidden-')
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.chmod(top, 0o755)
        path = os.path.join(top, 'w.sock')
        listener.bind(path)
        listener.listen()
        os.chmod(path, 0o600 if os.geteuid() == 0 else 0)
        spool = os.path.join(top, 'spool')
        os.mkdir(spool)
        os.chmod(spool, 0o777)
        as_user = ['runuser', '-u', 'nobody', '--'] if os.geteuid() == 0 else []
        p = Proc([*as_user, PYTHON, '-c', FORBIDDEN, 'ipc://' + path, spool], cwd=top)
        procs.append(p)
        done = p.wait_event('done', 3 * DEADLINE)
        assert p.wait() == 0, p.stderr
        assert done['close_s'] < DEADLINE / 5, done
        stats = done['stats']
        assert (stats['records'], stats['spooled_records'], stats['lost'], stats['sent_unconfirmed']) == (N, 0, N, 0), stats
        said = p.stderr.splitlines()
        assert len(said) == 2, p.stderr
        assert said[0].startswith('logfunnel: LOGFUNNEL_ERR_CONNECT: no writer answered at ipc://%s within ' % path), said
        assert said[0].endswith(
            " ms: permission denied: this process's user may not use the socket or its directory (see the writer's "
            "socketMode); closed before connect_timeout (10000 ms); close ended before its 10000 ms deadline: this "
            "process may not use the endpoint"), said
        assert said[1] == (
            'logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: close, the endpoint refused to this process: %d records without a '
            'receipt lost, never sent (the spool could not be written: LOGFUNNEL_ERR_UNSAFE_ENDPOINT: spool directory '
            '%s is not a directory of this user, closed to others)' % (N, spool)), said
    finally:
        listener.close()
        shutil.rmtree(top)


RECEIPT_AS_CLOSE_GIVES_UP = '''import json, logging, sys, threading, time
import logfunnel
from logfunnel._producer import _Producer
from logfunnel.wire import decode_receipt
held = threading.Event()
applied = _Producer._receipt

def late_receipt(self, frames):
    # The first receipt is read, and applied, only once close() has given up: as when it comes
    # in the last moment of the deadline.
    if not held.is_set() and decode_receipt(frames, self._producer_id)[0] is not None:
        held.set()
        deadline = time.monotonic() + 30
        while not self._closing and time.monotonic() < deadline:
            time.sleep(0.005)
    return applied(self, frames)

_Producer._receipt = late_receipt
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], spool_dir=sys.argv[2], seq_key='seq', close_timeout=0.3)
log = logging.getLogger('app'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
log.info('first')
held.wait(30)  # its receipt came: the sender holds it, and sends nothing more meanwhile
for i in range(%d):
    log.info('record %%d', i)
h.close()
print(json.dumps({'event': 'done', 'stats': h.client.stats}), flush=True)
''' % (N - 1)


def test_a_batch_receipted_as_close_gives_up_is_not_counted_lost(writer_factory, run_code, tmp_path):
    """The first batch's receipt comes as close() gives up at its deadline, with no spool to
    keep the rest: that record is in the file and counted confirmed, the 99 never sent are
    lost, and said so. Before, the close counted all 100 lost as it gave up, the one in the
    file too."""
    writer = writer_factory()
    (tmp_path / 'a-file').write_text('')
    spool = str(tmp_path / 'a-file' / 'spool')
    p = run_code(RECEIPT_AS_CLOSE_GIVES_UP, writer.endpoint, spool)
    done = p.wait_event('done', 60)
    assert p.wait() == 0, p.stderr
    stats = done['stats']
    assert (stats['records'], stats['batches'], stats['confirmed']) == (N, 1, 1), stats
    assert (stats['lost'], stats['sent_unconfirmed'], stats['spooled_records']) == (N - 1, 0, 0), stats
    assert p.stderr == ("logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: close deadline: %d records without a receipt lost, "
                        "never sent (the spool could not be written: ENOTDIR: Not a directory: '%s')\n"
                        % (N - 1, spool)), p.stderr
    summary = writer.stop()
    assert summary['records'] == 1 and count_lines(writer.file) == 1


def test_records_lost_are_said_with_raise_exceptions_off(run_code):
    """logging.raiseExceptions = False silences handleError's reports (a connect failure), not a
    report of records lost: that one is said as it was before it came through handleError."""
    code = ('import logging, sys\nlogging.raiseExceptions = False\nimport logfunnel\n'
            "h = logfunnel.LogfunnelHandler(sys.argv[1], close_timeout=0.3)\n"
            "log = logging.getLogger('app'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)\n"
            "for i in range(10):\n    log.info('record %d', i)\nh.close()\n")
    p = run_code(code, 'tcp://127.0.0.1:9')
    assert p.wait() == 0, p.stderr
    assert p.stderr == ('logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: close deadline: 10 records without a receipt lost, never '
                        'sent (no spool to keep them (a tcp endpoint without spool_dir))\n'), p.stderr


DENIED = '''import json, logging, sys, time
import logfunnel
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], curve_server_key=sys.argv[2], curve_key_file=sys.argv[3],
                               spool_dir=sys.argv[4], close_timeout=%r)
log = logging.getLogger('app'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
''' % DEADLINE + LOG_AND_CLOSE


def test_a_curve_key_the_writer_refuses_ends_close_at_once(writer_factory, run_code, tmp_path):
    """The writer refuses this producer's CURVE key (not in its allowed keys), with no spool to
    keep the records: close() ends at once, LOGFUNNEL_ERR_HANDSHAKE in the Node producer's words,
    then the records lost. Before, it waited out close_timeout (10 s) for a handshake the writer
    refuses each time, and said 'handshake failed (event 16384, CURVE keys?)'."""
    keys = {}
    for name in ('server', 'client', 'other'):
        out = subprocess.run([NODE, BIN, 'keygen'], capture_output=True, check=True, timeout=30).stdout
        (tmp_path / ('%s.json' % name)).write_bytes(out)
        keys[name] = json.loads(out)
    writer = writer_factory(['--curve-secret-key-file', str(tmp_path / 'server.json'),
                             '--curve-allowed-keys=' + keys['client']['publicKey']])
    (tmp_path / 'a-file').write_text('')
    spool = str(tmp_path / 'a-file' / 'spool')
    p = run_code(DENIED, writer.endpoint, keys['server']['publicKey'], str(tmp_path / 'other.json'), spool)
    done = p.wait_event('done', 3 * DEADLINE)
    assert p.wait() == 0, p.stderr
    assert done['close_s'] < DEADLINE / 5, done
    stats = done['stats']
    assert (stats['records'], stats['confirmed'], stats['lost'], stats['sent_unconfirmed']) == (N, 0, N, 0), stats
    said = p.stderr.splitlines()
    assert len(said) == 2, p.stderr
    assert said[0].startswith('logfunnel: LOGFUNNEL_ERR_HANDSHAKE: %s accepts connections but no writer answered within '
                              % writer.endpoint), said
    assert said[0].endswith(" ms: the writer refused the CURVE handshake: check curve_server_key, and that this producer's "
                            "public key is in the writer's curveAllowedKeys, or the writer is at its connection cap "
                            "(it then says connections-refused on its stderr); closed before connect_timeout (10000 ms); "
                            "close ended before its 10000 ms deadline: this process may not use the endpoint"), said
    assert said[1] == ("logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: close, the endpoint refused to this process: %d records "
                       "without a receipt lost, never sent (the spool could not be written: ENOTDIR: Not a directory: "
                       "'%s')" % (N, spool)), said
    assert writer.stop()['records'] == 0
