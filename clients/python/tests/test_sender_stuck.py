"""A sender thread that gives no sign of life (blocked for good in a call: a bug, a library that
hangs) or is merely slow, and what close() and the end of the process do about it. The stuck
call is a test hook: the PUSH socket's send waits on an Event that is never set."""

import time

from conftest import assert_clean, count_lines, verify

STUCK = '''import json, os, sys, threading, time
import logfunnel, logfunnel._sender as sender
endpoint, n, how, pause = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
never = threading.Event()
calls = 0

class HookedPush:
    """The PUSH socket; its first send never returns ('stuck'), or each send takes `pause` s ('slow')."""
    def __init__(self, sock):
        self._sock = sock
    def __getattr__(self, name):
        return getattr(self._sock, name)
    def send_multipart(self, *args, **kwargs):
        global calls
        calls += 1
        if how.startswith('stuck'):
            never.wait()
        time.sleep(pause)
        return self._sock.send_multipart(*args, **kwargs)

sender.STALL = 2.0  # the test's "no sign of life for good" (30 s by default)
open_sockets = sender.open_sockets
sender.open_sockets = lambda *a: (lambda push, *rest: (HookedPush(push), *rest))(*open_sockets(*a))
room = {'on_full': 'block', 'block_timeout': 0, 'max_frame_bytes': 65536, 'high_water_mark': 65536} if how == 'stuck-block' else {}
client = logfunnel.Client(endpoint, max_batch_bytes=4096, batch_delay=0, close_timeout=float(sys.argv[5]), **room)
began = time.monotonic()
for i in range(n):
    client.send(json.dumps({'pid': os.getpid(), 'seq': i, 'msg': 'y' * 100}))
logged = time.monotonic() - began
while not calls:  # the sender is in its first send
    time.sleep(0.01)
began = time.monotonic()
if how == 'stuck-at-exit':
    print(json.dumps({'event': 'ending'}), flush=True)
    sys.exit(0)
client.close()
print(json.dumps({'event': 'done', 'seconds': time.monotonic() - began, 'logged': logged, 'stats': client.stats}), flush=True)
'''


def assert_given_up_and_all_in_file(p, writer, n):
    """``p`` said once that it went on without its stuck sender, with the ``n`` records it spooled,
    and the writer took every one from the spool."""
    assert p.stderr.count('LOGFUNNEL_ERR_SENDER_FAILED: the sender thread gave no sign of life for 2 s') == 1, p.stderr
    assert ('%d records without a receipt went to the spool' % n) in p.stderr, p.stderr
    writer.wait_for_lines(n)
    assert writer.stop(spool_taken=True)['records'] == n
    assert_clean(verify(writer.file, '--expect', str(n)), n, 1)


def test_close_does_not_wait_for_good_on_a_stuck_sender(writer_factory, run_code):
    # close() waits its deadline (1 s) for receipts, moves what has none to the spool, then
    # waited for the sender thread to end with no bound: blocked in its first send, it never
    # does, and neither did close() nor the program. Now close() gives up on a thread with no
    # sign of life for STALL s, says so with the count it spooled, and the program ends.
    writer = writer_factory()
    n = 1000
    p = run_code(STUCK, writer.endpoint, str(n), 'stuck', '0', '1')
    done = p.wait_event('done', 60)
    assert p.wait() == 0
    stats = done['stats']
    assert stats['spooled_records'] == n and stats['confirmed'] == 0 and stats['lost'] == 0, done
    assert 2 <= done['seconds'] < 20, done
    assert_given_up_and_all_in_file(p, writer, n)


def test_the_end_of_the_process_does_not_wait_for_good_on_a_stuck_sender(writer_factory, run_code):
    # No close(): the exit hook closes the client (linger 1 s, then the spool) and waited for the
    # stuck thread with no bound, so the interpreter never ended. Now it ends, the records in the
    # spool, from which the writer takes every one.
    writer = writer_factory()
    n = 1000
    p = run_code(STUCK, writer.endpoint, str(n), 'stuck-at-exit', '0', '10')
    p.wait_event('ending')
    ending = time.monotonic()
    assert p.wait(60) == 0
    assert time.monotonic() - ending < 20
    assert_given_up_and_all_in_file(p, writer, n)


def test_a_log_call_blocked_for_room_does_not_wait_for_good_on_a_stuck_sender(writer_factory, run_code):
    # on_full 'block' with block_timeout 0 (however long it takes): past high_water_mark (64 KiB,
    # the 2000 records are 270 KiB) a log call waits for receipts from a sender blocked for good
    # in its first send, and it waited for good: the program hung. Now, after STALL s with no
    # sign of life, the call moves what is held to the spool and logging goes on; close() then
    # spools the rest and goes on without the thread. Every record reaches the file.
    writer = writer_factory()
    n = 2000
    p = run_code(STUCK, writer.endpoint, str(n), 'stuck-block', '0', '1')
    done = p.wait_event('done', 60)
    assert p.wait() == 0
    stats = done['stats']
    assert 2 <= done['logged'] < 20, done
    assert stats['spooled_records'] == n and stats['confirmed'] == 0 and stats['lost'] == 0 and stats['dropped'] == 0, done
    assert p.stderr.count("the sender thread gave no sign of life for 2 s (blocked in a call that does not return): "
                          "a log call waiting for room (on_full 'block') goes on without it: ") == 1, p.stderr
    assert p.stderr.count('LOGFUNNEL_ERR_SENDER_FAILED: the sender thread gave no sign of life for 2 s') == 2, p.stderr
    writer.wait_for_lines(n)
    assert writer.stop(spool_taken=True)['records'] == n
    assert_clean(verify(writer.file, '--expect', str(n)), n, 1)


def test_a_slow_sender_is_not_given_up_on(writer_factory, run_code):
    # Each send takes 0.5 s (a starved thread, a slow library), 12 batches in all, 6 s, three
    # times STALL: the thread still shows life between its calls, so close() waits for it and
    # never says it gave up on it; nothing is lost. Receipts that wait behind the slow sends may
    # count as the writer away (spool_after), so some batches may reach the file from the spool
    # (one full run under the test suite's load: all 400): each record is in the file once either way.
    writer = writer_factory()
    n = 400  # 12 batches of at most 4096 bytes
    p = run_code(STUCK, writer.endpoint, str(n), 'slow', '0.5', '60')
    done = p.wait_event('done', 60)
    assert p.wait() == 0
    stats = done['stats']
    assert stats['lost'] == 0 and stats['confirmed'] + stats['spooled_records'] >= n, done
    assert 'gave no sign of life' not in p.stderr, p.stderr
    writer.wait_for_lines(n)
    assert writer.stop()['records'] == n and count_lines(writer.file) == n
    assert_clean(verify(writer.file, '--expect', str(n)), n, 1)
