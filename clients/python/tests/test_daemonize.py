"""A program that makes its handler, then daemonizes the classic way: fork, os.setsid(), fork
again, os.closerange(3, ...) (every descriptor the handler had is closed under it), and the
daemon opens files of its own, which take the lowest numbers again. The handler must not close
or use those: the daemon's first record starts a sender of its own, and the signal watcher
inherited from the parent was dropped by the descriptor numbers it had, whatever they had
become. Before, it closed the daemon's first files (two of them, by the numbers of the parent's
watcher's socket pair), or the sender's new wake-up pipe, whose numbers libzmq's eventfds then
took: close() could not wake the sender and waited out its poll (receipt_timeout, 5 s), and the
sender read libzmq's eventfd as its wake-up pipe."""

import json
import os
import time

from conftest import verify

DAEMON = '''import json, logging, os, sys, time
import logfunnel
endpoint, records, out_path, files_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
h = logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq')
log = logging.getLogger('daemon'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
if os.fork() > 0:
    os._exit(0)
os.setsid()
if os.fork() > 0:
    os._exit(0)
os.closerange(3, 4096)
out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.dup2(out, 1); os.dup2(out, 2); os.close(out)
sys.stdout = os.fdopen(1, 'w', buffering=1); sys.stderr = os.fdopen(2, 'w', buffering=1)
# The daemon's own files: the lowest free numbers, those the handler's descriptors had.
mine = {}
for i in range(16):
    fd = os.open(os.path.join(files_dir, 'f%d' % i), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    st = os.fstat(fd)
    mine[fd] = (st.st_dev, st.st_ino)
for seq in range(records):
    log.info('from the daemon', extra={'seq': seq})
started = time.monotonic()
logging.shutdown()
close_secs = time.monotonic() - started
lost = []
for fd, ident in mine.items():
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != ident:
            lost.append('%d: another file' % fd)
    except OSError as err:
        lost.append('%d: %s' % (fd, err.strerror))
print(json.dumps({'event': 'done', 'pid': os.getpid(), 'close_secs': close_secs, 'lost_files': lost,
                  'stats': h.client.stats}), flush=True)
'''


def test_a_daemon_keeps_its_files_and_its_close_ends_at_once(writer_factory, run_code, tmp_path):
    writer = writer_factory()
    records = 1000
    out_path = str(tmp_path / 'daemon.out')
    files = tmp_path / 'files'
    files.mkdir()
    launcher = run_code(DAEMON, writer.endpoint, str(records), out_path, str(files))
    assert launcher.wait() == 0, launcher.stderr
    deadline = time.monotonic() + 60
    done = None
    while done is None:
        assert time.monotonic() < deadline, 'the daemon printed no done line in 60 s: %r' % (
            open(out_path).read() if os.path.exists(out_path) else '')
        if os.path.exists(out_path):
            with open(out_path, encoding='utf-8') as f:
                done = next((json.loads(line) for line in f if line.startswith('{"event": "done"')), None)
        time.sleep(0.05)
    assert done['lost_files'] == [], (done, open(out_path).read())
    assert done['stats']['confirmed'] == records and done['stats']['lost'] == 0, done
    # Receipts came before the close: it ends at once (the wait of a sender it cannot wake was 5 s).
    assert done['close_secs'] < 2.5, done
    writer.wait_for_lines(records)
    assert writer.stop()['records'] == records
    report = verify(writer.file)
    assert (report['lines'], report['gaps'], report['duplicates'], report['torn']) == (records, 0, 0, 0), report
