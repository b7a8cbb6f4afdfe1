"""Text that is not plain UTF-8: a line of bytes that are not UTF-8 is refused with a clear
error and the records around it are kept; a str holding lone surrogates (a file name that is
not UTF-8, as ``os.fsdecode`` and ``os.listdir`` give it) is written, its text kept exactly.
Numbers JSON has no spelling for (NaN, the infinities) are written as null, as pino does."""

import json

from conftest import assert_clean, count_lines, verify

BYTES = '''import json, sys
import logfunnel
client = logfunnel.Client(sys.argv[1])
client.send(json.dumps({'seq': 0, 'msg': 'before'}))
try:
    client.send(b'{"seq": 1, "msg": "not UTF-8: \\xff"}')
except ValueError as err:
    print(json.dumps({'event': 'refused', 'error': str(err)}), flush=True)
client.send(json.dumps({'seq': 1, 'msg': 'after'}))
client.close()
print(json.dumps({'event': 'done', 'stats': client.stats}), flush=True)
'''


def test_bytes_that_are_not_utf8_are_refused_and_the_rest_kept(writer_factory, run_code):
    # The writer refuses a whole batch that holds a line that is not UTF-8: the line must be
    # refused before it joins one, or the good records with it would be refused too.
    writer = writer_factory()
    p = run_code(BYTES, writer.endpoint)
    refused = p.wait_event('refused')
    assert refused['error'].startswith('a line must be UTF-8')
    done = p.wait_event('done')
    assert p.wait() == 0 and p.stderr == ''
    assert done['stats']['records'] == 2 and done['stats']['confirmed'] == 2
    summary = writer.stop()
    assert summary['records'] == 2 and summary['rejected'] == {}
    with open(writer.file, encoding='utf-8') as f:
        assert [json.loads(line)['msg'] for line in f] == ['before', 'after']


SURROGATES = '''import logging, os, sys
import logfunnel
log = logging.getLogger('names'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq'))
name = os.fsdecode(b'report-\\xff.txt')
log.info('opened %s', name)
log.info('listed', extra={'path': name, 'pair': '\\ud83d\\ude00'})
log.info('plain')
'''


def test_lone_surrogates_are_written_as_json_escapes(writer_factory, run_code):
    writer = writer_factory()
    p = run_code(SURROGATES, writer.endpoint)
    assert p.wait() == 0 and p.stderr == ''
    writer.wait_for_lines(3)
    summary = writer.stop()
    assert summary['records'] == 3 and count_lines(writer.file) == 3
    assert verify(writer.file, '--key', 'pid', '--expect', '3')['lines'] == 3
    with open(writer.file, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    name = b'report-\xff.txt'.decode('utf-8', 'surrogateescape')
    assert [r['seq'] for r in records] == [0, 1, 2]
    assert records[0]['msg'] == 'opened ' + name
    assert records[1]['path'] == name and records[1]['pair'] == '\U0001f600'
    assert records[2]['msg'] == 'plain'


NON_FINITE = '''import logging, sys
import logfunnel
log = logging.getLogger('ratios'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq'))
nan, inf = float('nan'), float('inf')
log.info('before', extra={'ratio': 0.5})
log.info('top level', extra={'ratio': nan, 'rate': inf, 'floor': -inf})
log.info('nested', extra={'stats': {'mean': nan, 'series': [1.5, inf, (2, -inf)], nan: 'key', inf: 'up'}})
log.info('after')
'''


def test_nan_and_infinities_are_written_as_null(writer_factory, run_code):
    writer = writer_factory()
    p = run_code(NON_FINITE, writer.endpoint)
    assert p.wait() == 0 and p.stderr == ''
    writer.wait_for_lines(4)
    summary = writer.stop()
    assert summary['records'] == 4 and count_lines(writer.file) == 4
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', '4'), 4, 1)

    def no_constant(name):
        raise AssertionError('%s in the file: not JSON' % name)
    with open(writer.file, encoding='utf-8') as f:
        records = [json.loads(line, parse_constant=no_constant) for line in f]
    assert [r['seq'] for r in records] == [0, 1, 2, 3]
    assert records[0]['ratio'] == 0.5
    assert (records[1]['ratio'], records[1]['rate'], records[1]['floor']) == (None, None, None)
    assert records[2]['stats'] == {'mean': None, 'series': [1.5, None, [2, None]], 'NaN': 'key', 'Infinity': 'up'}
    assert records[3]['msg'] == 'after'


AWKWARD = '''import logging, sys, traceback
import logfunnel
log = logging.getLogger('awkward'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq'))

class Point:
    def __repr__(self):
        return 'Point(1, 2)'

class Broken:
    def __repr__(self):
        raise RuntimeError('no repr')

class Unsayable(Exception):
    def __str__(self):
        raise RuntimeError('no str')

loop = {'name': 'loop'}; loop['self'] = loop
chain = [1]; chain.append(chain)
shared = [1]
log.info('circular', extra={'loop': loop, 'chain': chain, 'shared': [shared, shared]})
log.info('keys', extra={'by_pair': {(1, 2): 'a'}, 'by_object': {Point(): 'b'}})
log.info('broken repr', extra={'thing': Broken()})
try:
    raise Unsayable()
except Unsayable:
    log.exception('unsayable')
log.info('where', stack_info=True)
log.info('%d', 'x')             # refused, as by any handler: the message cannot be formatted
log.info('%s and %s', 'one')    # refused too
log.info('after')
'''


def test_values_json_cannot_write_keep_their_record(writer_factory, run_code):
    # Before, a circular value, a dict key that is not a str, int, float, bool or None, or a
    # value whose repr() raised made the record refused (handleError's report, the record lost,
    # where a FileHandler writes it), and stack_info=True's stack was not written at all.
    writer = writer_factory()
    p = run_code(AWKWARD, writer.endpoint)
    assert p.wait() == 0
    reports = p.stderr.count('--- Logging error ---')
    assert reports == 2, p.stderr  # the two messages that cannot be formatted, and nothing else
    assert 'TypeError: %d format: a real number is required, not str' in p.stderr
    assert 'TypeError: not enough arguments for format string' in p.stderr
    writer.wait_for_lines(6)
    writer.stop()
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', '6'), 6, 1)
    with open(writer.file, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    assert [r['msg'] for r in records] == ['circular', 'keys', 'broken repr', 'unsayable', 'where', 'after']
    assert records[0]['loop'] == {'name': 'loop', 'self': '[Circular]'}  # pino's safe-stable-stringify's word
    assert records[0]['chain'] == [1, '[Circular]']
    assert records[0]['shared'] == [[1], [1]]  # twice is not circular
    assert records[1]['by_pair'] == {'(1, 2)': 'a'} and records[1]['by_object'] == {'Point(1, 2)': 'b'}
    assert records[2]['thing'] == '<Broken object: repr() raised RuntimeError>'
    assert records[3]['err']['type'] == 'Unsayable' and records[3]['err']['message'] == '<exception str() failed>'
    assert records[3]['err']['stack'].endswith('\nUnsayable: <exception str() failed>\n')
    stack = records[4]['stack_info']
    assert stack.startswith('Stack (most recent call last):\n  File "<string>", line ') and stack.endswith(', in <module>'), stack
