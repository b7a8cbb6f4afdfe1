"""The spool in Node's format, ingested by the Node writer; on_full; fatal signals; close's deadline."""

import errno
import os
import signal
import struct
import json

import pytest

from conftest import assert_clean, assert_unreached_reported, count_lines, free_port, verify

N = 3000

LOG = '''import logging, logfunnel, sys, os, json
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', **json.loads(sys.argv[2]))
log = logging.getLogger('s'); log.addHandler(h); log.setLevel(logging.INFO); log.propagate = False
for i in range(int(sys.argv[3])):
    log.info('record %d', i)
'''


def test_close_deadline_spools_in_nodes_format(writer_factory, run_code):
    """Writer down: close() waits close_timeout, then the records go to <ipc path>.spool as one
    complete segment (preamble: endpoint, pid, start time); the writer ingests them all."""
    writer = writer_factory(start=False)
    p = run_code(LOG + 'h.close()\nprint(json.dumps({"event": "done", "stats": h.client.stats, "pid": os.getpid()}))\n',
                 writer.endpoint, json.dumps({'close_timeout': 0.3}), str(N))
    done = p.wait_event('done')
    assert p.wait() == 0
    assert_unreached_reported(p.stderr, 1)
    assert done['stats']['spooled_records'] == N and done['stats']['lost'] == 0
    files = writer.spool_files()
    assert len(files) == 1 and files[0].endswith('-%d-0000000000.spool' % done['pid'])
    with open(os.path.join(writer.dir, 'w.sock.spool', files[0]), 'rb') as f:
        data = f.read()
    assert data[:4] == b'LFS\x01'
    (length,) = struct.unpack('>I', data[4:8])
    preamble = json.loads(data[8:8 + length])
    assert preamble['endpoint'] == 'ipc://' + os.path.join(writer.dir, 'w.sock')
    assert preamble['pid'] == done['pid'] and preamble['start'].isdigit()
    writer.start()
    writer.wait_for_lines(N)
    summary = writer.stop()
    assert summary['records'] == N and writer.spool_files() == []
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)


@pytest.mark.parametrize('name', ['SIGTERM', 'SIGHUP', 'SIGINT'])
def test_a_fatal_signal_spools_then_the_process_dies_by_it(writer_factory, run_code, name):
    """SIGTERM (Pool.terminate(), a service manager), SIGHUP (the terminal or session closed) and
    SIGINT where the application set it to SIG_DFL: records without a receipt go to the spool,
    then the process ends by the signal as the default disposition would. (SIGQUIT is handled
    the same way; not sent here, where it could leave a core file.)"""
    signum = getattr(signal, name)
    writer = writer_factory(start=False)
    prelude = 'import signal\nsignal.signal(signal.SIGINT, signal.SIG_DFL)\n' if name == 'SIGINT' else ''
    p = run_code(prelude + LOG + 'print(json.dumps({"event": "logged"}), flush=True)\nimport time\ntime.sleep(60)\n',
                 writer.endpoint, '{}', str(N))
    p.wait_event('logged')
    p.proc.send_signal(signum)
    assert p.wait() == -signum  # ended as the default disposition would
    assert p.stderr == ''
    writer.start()
    writer.wait_for_lines(N)
    writer.stop()
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)


STUCK = LOG + '''import multiprocessing, signal, threading
lock = multiprocessing.Lock()
lock.acquire()
def elsewhere():
    # SIGTERM caught on a thread of the application while the main thread waits in sem_wait, which
    # only a signal to the main thread itself interrupts: as when it lands just before a Pool
    # worker's next get() blocks.
    threading.Event().wait(0.3)
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
threading.Thread(target=elsewhere, daemon=True).start()
print(json.dumps({"event": "logged"}), flush=True)
lock.acquire()
'''


def test_a_fatal_signal_caught_while_the_main_thread_is_blocked_still_spools_and_ends(writer_factory, run_code):
    """Python runs a handler only in the main thread; one blocked where the signal does not wake it
    would never run ours, and a `with Pool()` block waiting for that worker would never end."""
    writer = writer_factory(start=False)
    p = run_code(STUCK, writer.endpoint, '{}', str(N))
    p.wait_event('logged')
    assert p.wait(20) == -signal.SIGTERM
    assert p.stderr == ''
    writer.start()
    writer.wait_for_lines(N)
    writer.stop()
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)


def test_sigterm_handler_of_the_application_is_left_alone(writer_factory, run_code):
    """Where the application installed its own SIGTERM handler, the client installs none."""
    writer = writer_factory()
    code = 'import signal\nsignal.signal(signal.SIGTERM, lambda *a: print(\'{"event":"own"}\', flush=True))\n' + LOG + \
        'print(json.dumps({"event": "logged", "same": signal.getsignal(signal.SIGTERM).__name__}), flush=True)\nimport time\ntime.sleep(0.5)\n'
    p = run_code(code, writer.endpoint, '{}', '10')
    assert p.wait_event('logged')['same'] == '<lambda>'
    assert p.wait() == 0


def test_on_full_drop_counts_and_reports(writer_factory, run_code):
    writer = writer_factory(start=False)
    opts = {'on_full': 'drop', 'high_water_mark': 1024 * 1024, 'max_frame_bytes': 1024 * 1024, 'close_timeout': 0.2}
    code = LOG.replace("log.info('record %d', i)", "log.info('%d' + 'x' * 1000, i)") + \
        'h.close()\nprint(json.dumps({"event": "done", "stats": h.client.stats}))\n'
    p = run_code(code, writer.endpoint, json.dumps(opts), str(N))
    stats = p.wait_event('done')['stats']
    assert p.wait() == 0
    assert stats['dropped'] > 0 and stats['dropped'] + stats['spooled_records'] == N
    assert "on_full 'drop': %d records dropped" % stats['dropped'] in p.stderr
    writer.start()
    writer.wait_for_lines(stats['spooled_records'])
    assert writer.stop()['records'] == stats['spooled_records']


def test_on_full_block_waits_block_timeout_then_spools_and_goes_on(writer_factory, run_code):
    """The writer down: log calls wait block_timeout once, then what is held goes to the spool and
    logging goes on (before, each log call past the mark waited close_timeout and lost its record)."""
    writer = writer_factory(start=False)
    opts = {'high_water_mark': 1024 * 1024, 'block_timeout': 0.3, 'close_timeout': 0.2}
    code = LOG.replace("log.info('record %d', i)", "log.info('%d' + 'x' * 1000, i)") + \
        'h.close()\nprint(json.dumps({"event": "done", "stats": h.client.stats}))\n'
    p = run_code(code, writer.endpoint, json.dumps(opts), str(N))
    stats = p.wait_event('done', timeout=20)['stats']
    assert p.wait() == 0
    assert_unreached_reported(p.stderr, 1)
    assert stats['dropped'] == 0 and stats['lost'] == 0 and stats['spooled_records'] == N
    writer.start()
    writer.wait_for_lines(N)
    assert writer.stop()['records'] == N
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)


def test_on_full_block_with_no_spool_drops_past_the_mark_after_block_timeout(run_code):
    """No spool (tcp without spool_dir) and no writer: after one block_timeout the records past the
    mark are dropped and counted, not waited for one by one; the count is reported."""
    opts = {'high_water_mark': 1024 * 1024, 'block_timeout': 0.3, 'close_timeout': 0.2}
    code = LOG.replace("log.info('record %d', i)", "log.info('%d' + 'x' * 1000, i)") + \
        'h.close()\nprint(json.dumps({"event": "done", "stats": h.client.stats}))\n'
    p = run_code(code, 'tcp://127.0.0.1:%d' % free_port(), json.dumps(opts), str(N))
    stats = p.wait_event('done', timeout=20)['stats']
    assert p.wait() == 0
    assert stats['dropped'] > 0 and stats['records'] + stats['dropped'] == N
    assert "on_full 'block': %d records dropped past high_water_mark" % stats['dropped'] in p.stderr


def test_on_full_spool_moves_records_to_the_spool_while_the_writer_is_down(writer_factory, run_code):
    writer = writer_factory(start=False)
    opts = {'on_full': 'spool', 'high_water_mark': 1024 * 1024, 'close_timeout': 0.2}
    code = LOG + 'print(json.dumps({"event": "done", "stats": h.client.stats}), flush=True)\nh.close()\n'
    p = run_code(code, writer.endpoint, json.dumps(opts), str(20 * N))
    stats = p.wait_event('done')['stats']
    assert p.wait() == 0
    assert_unreached_reported(p.stderr, 1)
    assert stats['spooled_records'] > 0 and stats['dropped'] == 0  # spooled before close
    writer.start()
    writer.wait_for_lines(20 * N)
    assert writer.stop()['records'] == 20 * N
    assert_clean(verify(writer.file, '--expect', str(20 * N)), 20 * N, 1)


def test_nothing_is_lost_silently_without_a_spool(tmp_path, run_code):
    """tcp without spool_dir: what close's deadline leaves is reported on stderr with its count."""
    p = run_code(LOG + 'h.close()\n', 'tcp://127.0.0.1:9', json.dumps({'close_timeout': 0.2}), '100')
    assert p.wait() == 0
    assert ('logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: close deadline: 100 records without a receipt lost, never sent '
            '(no spool to keep them (a tcp endpoint without spool_dir))\n') in p.stderr, p.stderr
    assert count_lines(str(tmp_path / 'app.log')) == 0


MID_SPOOL = '''import os, signal, json
from logfunnel import spool
append = spool.SpoolWriter.append
entries = []
def append_then_signal(self, header, payload):
    # SIGTERM lands while the main thread writes the spool: as when Pool.terminate() reaches a
    # worker whose exit finalizer is spooling after close's deadline.
    append(self, header, payload)
    entries.append(1)
    if len(entries) == 2:
        print(json.dumps({"event": "signal", "records": h.client.stats['records']}), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
spool.SpoolWriter.append = append_then_signal
'''


@pytest.mark.parametrize('where', ['close', 'exit', 'on_full'])
def test_a_fatal_signal_caught_while_the_spool_is_written_waits_for_it(writer_factory, run_code, where):
    """The handler runs between two bytecodes of the main thread: caught while that thread writes
    the spool (close's deadline, the exit finalizer, on_full 'spool' in a log call), it must not end
    the process with the segment half written, nor write into it from the middle of an entry; it
    ends the process once the spool is complete."""
    writer = writer_factory(start=False)
    # spool_after 0: only the main thread writes the spool (the sender thread's copies, with no
    # writer for spool_after, sent the signal from that thread, while the main one still logged).
    opts = {'max_batch_bytes': 4096, 'close_timeout': 0.2, 'spool_after': 0}
    records = N
    if where == 'on_full':
        opts.update(on_full='spool', high_water_mark=256 * 1024, max_frame_bytes=65536)
        records = 20 * N
    tail = 'h.close()\n' if where == 'close' else ''
    p = run_code(MID_SPOOL + LOG + tail + 'print(json.dumps({"event": "alive"}), flush=True)\n',
                 writer.endpoint, json.dumps(opts), str(records))
    logged = p.wait_event('signal')['records']
    assert p.wait() == -signal.SIGTERM
    assert p.stderr == ''
    if where != 'exit':  # at exit, the spool is written after the script's last line
        assert not any('"alive"' in line for line in p.stdout)
    if where != 'on_full':
        assert logged == records
    writer.start()
    writer.wait_for_lines(logged)
    assert writer.stop()['records'] == logged
    assert_clean(verify(writer.file, '--expect', str(logged)), logged, 1)


FAILED_RENAME = '''import os, json, time
from logfunnel import spool
rename = os.rename
failed = []
def rename_fails_once(src, dst):
    # The spool directory refused the rename once (EACCES: its mode changed for a moment).
    if not failed:
        failed.append(src)
        raise PermissionError(13, 'Permission denied', src)
    rename(src, dst)
spool.os.rename = rename_fails_once
'''

PACED = '''import logging, logfunnel, sys, json, time
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', **json.loads(sys.argv[2]))
log = logging.getLogger('s'); log.addHandler(h); log.setLevel(logging.INFO); log.propagate = False
for i in range(int(sys.argv[3])):
    log.info('record %d', i)
    if i % 500 == 499:
        time.sleep(0.15)  # past SEGMENT_MAX_AGE: the segment is handed over, the next one starts
h.close()
print(json.dumps({"event": "done", "stats": h.client.stats, "failed": failed}), flush=True)
'''


def test_a_spool_segment_whose_rename_fails_is_not_written_again(writer_factory, run_code):
    """on_full 'spool' with the writer down: segments are handed over (renamed) as logging goes
    on. When one rename fails, the next entries go to a new segment, and the rename is tried
    again. Before, they were appended to the same file after a second preamble, and the writer
    set everything after it aside as torn: records missing from the middle of the sequence,
    while the producer counted them as spooled."""
    writer = writer_factory(start=False)
    opts = {'on_full': 'spool', 'high_water_mark': 64 * 1024, 'max_batch_bytes': 4096, 'max_frame_bytes': 65536}
    p = run_code(FAILED_RENAME + PACED, writer.endpoint, json.dumps(opts), str(N))
    done = p.wait_event('done')
    assert p.wait() == 0
    assert len(done['failed']) == 1 and done['stats']['lost'] == 0 and done['stats']['spooled_records'] == N
    assert all(name.endswith('.spool') for name in writer.spool_files())
    writer.start()
    writer.wait_for_lines(N)
    summary = writer.stop()
    assert summary['records'] == N and summary['spool']['torn'] == 0
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)


INTERRUPTED = '''import logging, logfunnel, sys, json, signal
from logfunnel import _producer
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
wait_confirmed = _producer._Producer._wait_confirmed
def announced(self, timeout, what, **kwargs):
    if what == 'close':
        print(json.dumps({"event": "waiting"}), flush=True)
    return wait_confirmed(self, timeout, what, **kwargs)
_producer._Producer._wait_confirmed = announced
# spool_after 0: the stopped writer never counts as away, so the close waits for receipts until
# the Ctrl-C (with it, the close may end before the Ctrl-C lands, everything in the spool).
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', linger=30, spool_after=0)
log = logging.getLogger('s'); log.addHandler(h); log.setLevel(logging.INFO); log.propagate = False
for i in range(int(sys.argv[2])):
    log.info('record %d', i)
if sys.argv[3] == 'close':
    h.close()
'''


@pytest.mark.parametrize('where', ['close', 'exit'])
def test_ctrl_c_while_close_waits_for_receipts_spools_them(writer_factory, run_code, where):
    """Ctrl-C (KeyboardInterrupt) while close(), or the exit hook, waits for receipts from a
    writer that does not answer: what has no receipt goes to the spool, and the writer takes it.
    Before, the interrupted close counted as done: nothing was spooled, nothing was said, and in
    the exit hook the process even ended with 0."""
    writer = writer_factory()
    os.kill(writer.proc.proc.pid, signal.SIGSTOP)
    try:
        p = run_code(INTERRUPTED, writer.endpoint, str(N), where)
        p.wait_event('waiting')
        p.proc.send_signal(signal.SIGINT)
        code = p.wait()
    finally:
        os.kill(writer.proc.proc.pid, signal.SIGCONT)
    assert code != 0 if where == 'close' else code in (0, 1, -signal.SIGINT)
    assert 'KeyboardInterrupt' in p.stderr
    writer.wait_for_lines(N)
    summary = writer.stop()
    assert summary['records'] == N
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)


# The Ctrl-C lands in Condition.wait()'s window: right after the wait released the handler's lock,
# before its try block that takes it back (a signal handler runs between any two bytecodes).
IN_THE_WINDOW = INTERRUPTED.replace("if sys.argv[3] == 'close':", '''import threading
changed = h.client._changed
release_save = changed._release_save
def release_then_interrupt():
    state = release_save()
    if threading.current_thread() is threading.main_thread() and changed_armed:
        raise KeyboardInterrupt
    return state
changed._release_save = release_then_interrupt
announced_before = _producer._Producer._wait_confirmed
def armed(self, timeout, what, **kwargs):
    global changed_armed
    changed_armed = what == 'close'
    return announced_before(self, timeout, what, **kwargs)
changed_armed = False
_producer._Producer._wait_confirmed = armed
if sys.argv[3] == 'close':''')


@pytest.mark.parametrize('where', ['close', 'exit'])
def test_ctrl_c_in_the_wait_s_unlocked_window_is_a_keyboard_interrupt_and_spools(writer_factory, run_code, where):
    """A KeyboardInterrupt raised just after Condition.wait() released the lock, before it takes
    it back: close() and the exit hook end as for any Ctrl-C (the KeyboardInterrupt said, the
    records spooled and taken by the writer). Before, the ``with`` around the wait failed with
    'RuntimeError: cannot release un-acquired lock' in its place (seen in a full run under load)."""
    writer = writer_factory()
    os.kill(writer.proc.proc.pid, signal.SIGSTOP)
    try:
        p = run_code(IN_THE_WINDOW, writer.endpoint, str(N), where)
        code = p.wait()
    finally:
        os.kill(writer.proc.proc.pid, signal.SIGCONT)
    assert code != 0 if where == 'close' else code in (0, 1, -signal.SIGINT)
    assert 'KeyboardInterrupt' in p.stderr, p.stderr
    assert 'un-acquired' not in p.stderr, p.stderr
    writer.wait_for_lines(N)
    summary = writer.stop()
    assert summary['records'] == N
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)


DROPPED = '''import sys, json, gc
from logfunnel import Client
c = Client(sys.argv[1])
for i in range(100):
    c.send(json.dumps({"pid": 1, "seq": i, "msg": "dropped"}))
del c
gc.collect()
print(json.dumps({"event": "dropped"}), flush=True)
'''


def test_a_dropped_client_and_the_exit_wait_linger_not_close_timeout(writer_factory, run_code):
    """A Client collected without close() (a logger made per request), then the script ends, no
    writer: it waits `linger` (1 s), as the exit hook does, then spools; the script ends. Before,
    its close waited close_timeout (10 s) and the exit waited for that close."""
    writer = writer_factory(start=False)
    p = run_code(DROPPED, writer.endpoint)
    p.wait_event('dropped')
    assert p.wait(timeout=5) == 0
    assert_unreached_reported(p.stderr, 1)
    writer.start()
    writer.wait_for_lines(100)
    assert writer.stop()['records'] == 100


def test_a_process_killed_while_the_writer_is_away_keeps_what_it_had_batched(writer_factory, run_code):
    """No writer connected for spool_after (0.1 s): every batch without a receipt is copied to the
    spool as well, kept and sent on; a SIGKILL then (gunicorn's, for a worker past its timeout)
    loses nothing it had batched. Before, such a process lost every record it held."""
    writer = writer_factory(start=False)
    code = LOG + '''import time
producer = h.client._producer
deadline = time.monotonic() + 20
# Until every batch made so far has its copy (read under the producer's lock).
while True:
    with producer._lock:
        copied = not producer._queued and producer._copied_through == producer._next_seq - 1
    if copied or time.monotonic() > deadline:
        break
    time.sleep(0.01)
print(json.dumps({"event": "copied", "copied": copied, "stats": h.client.stats}), flush=True)
time.sleep(60)
'''
    p = run_code(code, writer.endpoint, json.dumps({'max_batch_bytes': 16 * 1024}), str(N))
    copied = p.wait_event('copied')
    assert copied['copied'] and copied['stats']['spool_copies'] > 1, copied
    p.proc.kill()
    assert p.wait() == -signal.SIGKILL
    writer.start()
    writer.wait_for_lines(N)
    assert writer.stop()['records'] == N
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)
    assert writer.spool_files() == []


FILLS_MID_ENTRY = '''import json, os, resource, sys
from logfunnel.spool import SpoolWriter
from logfunnel.wire import HEADER, PROTOCOL_VERSION
# RLIMIT_FSIZE: a write that crosses it is cut short and the next fails with EFBIG, as a write
# fails part-way on a full disk (CPython ignores SIGXFSZ, so the process lives on).
resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
producer_id = os.urandom(16)
spool = SpoolWriter(sys.argv[1], producer_id.hex(), sys.argv[2])
seq = 0
for i, size in enumerate(int(s) for s in sys.argv[3:]):
    head = json.dumps({'i': i, 'pad': ''}, separators=(',', ':'))
    line = (json.dumps({'i': i, 'pad': 'x' * max(0, size - len(head) - 1)}, separators=(',', ':')) + '\\n').encode()
    try:
        spool.append(HEADER.pack(b'LF', PROTOCOL_VERSION, 0, 1, seq, 0, producer_id), line)
        seq += 1
    except OSError as err:
        print(json.dumps({'event': 'failed', 'i': i, 'errno': err.errno}), flush=True)
spool.seal()
print(json.dumps({'event': 'done', 'appended': seq}), flush=True)
'''


def test_an_entry_that_fails_part_way_is_cut_off_and_an_entry_less_segment_removed(writer_factory, run_code):
    """A disk that fills in the middle of an entry: the part written is cut off again (the
    caller keeps the batch), and a segment left with no entry is removed. Before, the part went
    to the writer as a torn tail, reported as a crash's, and an entry-less segment with it.
    Files of at most 3000 bytes: segment 0 takes entries 0 and 1, entry 2 fails part-way;
    segment 1 gets its preamble and entry 3 fails part-way; segment 2 takes entry 4."""
    writer = writer_factory(start=False)
    spool_dir = os.path.join(writer.dir, 'w.sock.spool')
    p = run_code(FILLS_MID_ENTRY, spool_dir, writer.endpoint, '1000', '1000', '5000', '5000', '1000')
    p.wait_event('done')
    assert p.wait() == 0, p.stderr
    events = [json.loads(line) for line in p.stdout]
    assert events == [{'event': 'failed', 'i': 2, 'errno': errno.EFBIG}, {'event': 'failed', 'i': 3, 'errno': errno.EFBIG},
                      {'event': 'done', 'appended': 3}]
    assert [name.split('-')[-1] for name in writer.spool_files()] == ['0000000000.spool', '0000000002.spool']
    writer.start()
    writer.wait_for_lines(3)
    summary = writer.stop()
    assert summary['records'] == 3
    assert summary['spool'] == {'files': 2, 'entries': 3, 'torn': 0, 'rejected': 0, 'foreign': 0, 'leftAtStop': 0}
    with open(writer.file, encoding='utf-8') as f:
        assert [json.loads(line)['i'] for line in f] == [0, 1, 4]
