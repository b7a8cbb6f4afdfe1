"""A producer whose stderr cannot be written: sys.stderr None (pythonw, a daemon that set it so),
fd 2 a pipe whose reader has exited (BrokenPipeError) or /dev/full (ENOSPC). What the handler says
on stderr (records dropped by on_full, a record logged after close()) must not raise into the
application's close() or log call, nor leave text in sys.stderr's buffer that the interpreter
fails to flush at exit (exit status 120): the same program without logfunnel ends with 0.
Before, close() raised AttributeError or the OSError of the write, and a record logged through a
closed handler raised out of the log call."""

import json

import pytest

from conftest import verify

BROKEN = '''import json, logging, os, sys
import logfunnel
endpoint, how, records = sys.argv[1], sys.argv[2], int(sys.argv[3])
h = logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq', on_full='drop', high_water_mark=65536,
                               max_frame_bytes=65536, max_batch_bytes=16384, close_timeout=0.5, linger=0.5)
log = logging.getLogger('app'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
if how == 'none':
    sys.stderr = None
elif how == 'dead pipe':  # fd 2 itself, as a daemon's stderr whose reader is gone
    r, w = os.pipe(); os.close(r); os.dup2(w, 2); os.close(w)
else:
    full = os.open('/dev/full', os.O_WRONLY); os.dup2(full, 2); os.close(full)
raised = []
for seq in range(records):
    log.info('x' * 300, extra={'seq': seq})
try:
    h.close()
except BaseException as err:
    raised.append('close: %s: %s' % (type(err).__name__, err))
closed = h.client
try:
    log.info('after close', extra={'seq': records})
except BaseException as err:
    raised.append('log after close: %s: %s' % (type(err).__name__, err))
print(json.dumps({'event': 'done', 'raised': raised, 'stats': closed.stats, 'closed_drops': h.closed_drops,
                  'late': h.client.stats['records'], 'reopened': h.client is not closed}), flush=True)
'''


@pytest.mark.parametrize('how', ['none', 'dead pipe', '/dev/full'])
def test_reports_on_a_broken_stderr_raise_nothing(writer_factory, run_code, how):
    """No writer: every record past high_water_mark dropped ('drop'), the rest spooled at close,
    the drops reported at close; then one record through the closed handler (it takes a client
    again, whose end spools it and says no writer was reached). Nothing raises, the program ends
    with 0, and the records kept are in the file once a writer starts."""
    writer = writer_factory(start=False)
    records = 2000
    p = run_code(BROKEN, writer.endpoint, how, str(records))
    done = p.wait_event('done', timeout=60)
    assert (p.wait(), done["raised"]) == (0, []), (done, p.stderr)
    assert done['raised'] == [], done
    stats = done['stats']
    assert stats['dropped'] > 0 and stats['records'] + stats['dropped'] == records, stats
    assert stats['spooled_records'] == stats['records'] and stats['lost'] == 0, stats
    assert (done['closed_drops'], done['late'], done['reopened']) == (0, 1, True), done
    kept = stats['records'] + 1
    writer.start()
    writer.wait_for_lines(kept)
    assert writer.stop(spool_taken=True)['records'] == kept
    report = verify(writer.file)
    assert (report['lines'], report['duplicates'], report['torn']) == (kept, 0, 0), report
