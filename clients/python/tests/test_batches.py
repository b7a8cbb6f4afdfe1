"""Batches as the writer sees them: lines shorter than, as long as and longer than
max_batch_bytes, in multi-byte text, from one producer; every record once, whole, in order."""

import json

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
