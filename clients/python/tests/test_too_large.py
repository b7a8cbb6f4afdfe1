"""A record over max_frame_bytes is refused as Node's producers refuse one (README:
``LOGFUNNEL_ERR_RECORD_TOO_LARGE``, counted in ``tooLarge``, said once): the error carries that
code (``RecordTooLarge``, a ValueError too), is counted in ``stats['too_large']`` and said once,
in one line through handleError; the records around it are all written. Before, each one was
logging's 40-line report of a bare ValueError without a code (200 lines for 5 such records)."""

import json
import re

from conftest import assert_clean, count_lines, verify

TOO_LARGE = '''import json, logging, sys
import logfunnel
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', max_frame_bytes=4096, max_batch_bytes=4096,
                               high_water_mark=65536)
log = logging.getLogger('big'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
for i in range(1000):
    log.info('record %d %s', i, 'x' * (5000 if i % 200 == 7 else 100))
try:
    h.client.send('y' * 5000)
except ValueError as err:
    said = {'code': err.code, 'value_error': isinstance(err, ValueError), 'text': str(err)}
h.close()
print(json.dumps({'event': 'done', 'stats': h.client.stats, 'said': said}), flush=True)
'''


def test_records_over_max_frame_bytes_are_refused_with_the_code_and_said_once(writer_factory, run_code):
    writer = writer_factory()
    p = run_code(TOO_LARGE, writer.endpoint)
    done = p.wait_event('done')
    assert p.wait() == 0, p.stderr
    assert done['said'] == {'code': 'LOGFUNNEL_ERR_RECORD_TOO_LARGE', 'value_error': True,
                            'text': 'LOGFUNNEL_ERR_RECORD_TOO_LARGE: record of 5001 bytes exceeds max_frame_bytes '
                                    '(4096 bytes); it was not sent'}, done
    # 5 through the handler, 1 through Client.send()
    assert done['stats']['too_large'] == 6 and done['stats']['records'] == 995, done
    # the line's size holds the host name's length
    assert re.fullmatch(r'logfunnel: LOGFUNNEL_ERR_RECORD_TOO_LARGE: record of 5\d\d\d bytes exceeds max_frame_bytes '
                        r'\(4096 bytes\); it was not sent\n', p.stderr), p.stderr
    writer.wait_for_lines(995)
    summary = writer.stop()
    assert summary['records'] == 995 and count_lines(writer.file) == 995
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', '995'), 995, 1)
    with open(writer.file, encoding='utf-8') as f:
        numbers = [int(json.loads(line)['msg'].split()[1]) for line in f]
    assert numbers == [i for i in range(1000) if i % 200 != 7]
