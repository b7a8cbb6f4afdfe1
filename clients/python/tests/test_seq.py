"""``seq_key``: one number per record written, so that ``logfunnel verify`` proves nothing was
lost: records the handler refuses take no number."""

import json

from conftest import assert_clean, count_lines, verify

REFUSED = '''import logging, sys
import logfunnel
log = logging.getLogger('refused'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', max_frame_bytes=4096,
                                          max_batch_bytes=4096, high_water_mark=65536))
circular = {}
circular['self'] = circular
log.info('a')
log.info('tuple key', extra={'data': {(1, 2): 'x'}})
log.info('b')
log.info('circular', extra={'data': circular})
log.info('over max_frame_bytes %s', 'x' * 5000)
log.info('c')
'''


def test_records_the_handler_refuses_take_no_seq(writer_factory, run_code):
    writer = writer_factory()
    p = run_code(REFUSED, writer.endpoint)
    assert p.wait() == 0
    # each refused record reported once by handleError
    assert p.stderr.count('--- Logging error ---') == 3, p.stderr
    assert 'keys must be str' in p.stderr and 'Circular reference detected' in p.stderr
    assert 'exceeds max_frame_bytes' in p.stderr
    writer.wait_for_lines(3)
    summary = writer.stop()
    assert summary['records'] == 3 and count_lines(writer.file) == 3
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', '3'), 3, 1)
    with open(writer.file, encoding='utf-8') as f:
        assert [(r['seq'], r['msg']) for r in map(json.loads, f)] == [(0, 'a'), (1, 'b'), (2, 'c')]
