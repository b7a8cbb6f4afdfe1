"""Batches as the writer sees them: lines shorter than, as long as and longer than
max_batch_bytes, in multi-byte text, from one producer; every record once, whole, in order."""

import json

import pytest

from conftest import assert_clean, verify

N = 3000
# Characters per message (each 'é' is 2 bytes): far under, just under, at and over the 4 KiB batch.
SIZES = (1, 60, 2000, 2040, 2048, 4500, 170)

CODE = '''import json, logging, sys
from logfunnel import LogfunnelHandler
sizes = %r
h = LogfunnelHandler(sys.argv[1], seq_key='seq', max_batch_bytes=4096, close_timeout=20)
log = logging.getLogger('batches')
log.addHandler(h)
log.setLevel(logging.INFO)
log.propagate = False
for i in range(%d):
    log.info('%%d:%%s', i, '\\u00e9' * sizes[i %% len(sizes)])
h.close()
print(json.dumps({'event': 'done', 'stats': h.client.stats}))
''' % (SIZES, N)


def test_lines_around_the_batch_size(writer_factory, run_code):
    writer = writer_factory()
    p = run_code(CODE, writer.endpoint)
    done = p.wait_event('done')
    assert p.wait() == 0 and p.stderr == ''
    summary = writer.stop()
    assert summary['records'] == N
    assert done['stats']['records'] == N and done['stats']['confirmed'] == N
    # A line over 4 KiB is a batch of its own, so there are at least as many batches as those.
    assert summary['batches'] >= N // len(SIZES)
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)
    with open(writer.file, encoding='utf-8') as f:
        msgs = [json.loads(line)['msg'] for line in f]
    assert msgs == ['%d:%s' % (i, '\u00e9' * SIZES[i % len(SIZES)]) for i in range(N)]


MISMATCH = 10000
MISMATCH_CODE = '''import json, logging, sys, time
from logfunnel import LogfunnelHandler
h = LogfunnelHandler(sys.argv[1], seq_key='seq', close_timeout=20)
log = logging.getLogger('mismatch')
log.addHandler(h)
log.setLevel(logging.INFO)
log.propagate = False
for i in range(%d):
    log.info('%%s', 'x' * 150)
    if i %% 2000 == 1999:
        time.sleep(0.3)
h.close()
print(json.dumps({'event': 'done', 'stats': h.client.stats}))
''' % MISMATCH


@pytest.mark.parametrize('limit', [65536, 16384])
def test_a_writer_with_a_smaller_max_frame_bytes(writer_factory, run_code, limit):
    """The writer's --max-frame-bytes (64 KiB; 16 KiB, a quarter of which its reader reads past
    without keeping) is below the handler's batches (256 KiB): the writer refuses them over the
    network and says so; the handler hears it (the too-large
    receipt flag), moves what it holds to the spool, where the writer takes it, and batches
    within 64 KiB from then on. Before, the batches were refused until close(), which ended
    with them in the spool, set aside there as torn: none of the records reached the file."""
    writer = writer_factory(['--max-frame-bytes', str(limit)])
    p = run_code(MISMATCH_CODE, writer.endpoint)
    done = p.wait_event('done', timeout=60)
    assert p.wait() == 0 and p.stderr == ''
    stats = done['stats']
    assert stats['records'] == MISMATCH and stats['lost'] == 0 and stats['dropped'] == 0
    # The first burst goes through the spool; once the writer has it, batches go over the network.
    assert stats['confirmed'] + stats['spooled_records'] == MISMATCH
    assert 0 < stats['spooled_records'] < MISMATCH
    summary = writer.stop(spool_taken=True)
    assert summary['records'] == MISMATCH and summary['spool']['torn'] == 0 and summary['rejected']['too_large'] > 0
    told = [json.loads(line) for line in writer.proc.stderr.splitlines() if '"batch-too-large"' in line]
    assert len(told) == 1 and told[0]['maxFrameBytes'] == limit
    assert_clean(verify(writer.file, '--expect', str(MISMATCH)), MISMATCH, 1)
