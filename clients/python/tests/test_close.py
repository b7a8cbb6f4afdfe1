"""close() while a log call waits for room (on_full 'block', the writer away): the waiting
record follows the others to the spool, not lost and not counted nowhere."""

import json

from conftest import assert_clean, count_lines, verify

BLOCKED = '''import json, logging, sys, threading, time
import logfunnel
handler = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', high_water_mark=65536,
                                     max_frame_bytes=65536, max_batch_bytes=16384, close_timeout=0.5,
                                     block_timeout=30)
log = logging.getLogger('blocked'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(handler)
stop = threading.Event()
calls = [0]

def spam():
    while not stop.is_set():
        log.info('record %d %s', calls[0], 'x' * 1000)
        calls[0] += 1

def waiting_for_room(thread):
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == '_make_room':
            return True
        frame = frame.f_back
    return False

t = threading.Thread(target=spam)
t.start()
deadline = time.monotonic() + 10
while not waiting_for_room(t):
    assert time.monotonic() < deadline, 'the log call never waited for room'
    time.sleep(0.01)
stop.set()        # the waiting call is the thread's last
handler.close()   # close_timeout: what is held goes to the spool while that call waits
t.join(10)
assert not t.is_alive()
print(json.dumps({'event': 'done', 'calls': calls[0], 'closed_drops': handler.closed_drops,
                  'stats': handler.client.stats}), flush=True)
'''


def test_a_record_waiting_for_room_during_close_goes_to_the_spool(writer_factory, run_code):
    writer = writer_factory(start=False)
    p = run_code(BLOCKED, writer.endpoint)
    done = p.wait_event('done')
    assert p.wait() == 0, p.stderr
    calls, stats = done['calls'], done['stats']
    # 64 KiB of ~1.1 KB lines held, then the call that waited: before, it was queued in the
    # closed producer and never sent nor spooled (records 60, spooled 59, in the file 59).
    assert calls > 50 and done['closed_drops'] == 0
    assert (stats['records'], stats['spooled_records'], stats['lost'], stats['dropped']) == (calls, calls, 0, 0)
    writer.start()
    writer.wait_for_lines(calls)
    summary = writer.stop()
    assert summary['records'] == calls and count_lines(writer.file) == calls
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', str(calls)), calls, 1)
    with open(writer.file, encoding='utf-8') as f:
        assert [r['seq'] for r in map(json.loads, f)] == list(range(calls))
