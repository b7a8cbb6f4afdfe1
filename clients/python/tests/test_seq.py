"""``seq_key``: per pid, one number per record written, in the file's order, so that
``logfunnel verify`` proves nothing was lost or reordered: records the handler refuses take no
number, a signal handler's record does not overtake the one it interrupted, and a
QueueListener's records count per worker."""

import json

from conftest import PYTHON, SIGNAL_KICKS, Proc, assert_clean, count_lines, run_signal_kicks, verify

REFUSED = '''import logging, sys
import logfunnel
log = logging.getLogger('refused'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', max_frame_bytes=4096,
                                          max_batch_bytes=4096, high_water_mark=65536))
log.info('a')
log.info('%d', 'x')
log.info('b')
log.info('%s and %s', 'one')
log.info('over max_frame_bytes %s', 'x' * 5000)
log.info('c')
'''


def test_records_the_handler_refuses_take_no_seq(writer_factory, run_code):
    writer = writer_factory()
    p = run_code(REFUSED, writer.endpoint)
    assert p.wait() == 0
    # each record that cannot be formatted reported by handleError; the one over max_frame_bytes
    # as logfunnel's own error, one line with its code (tests/test_too_large.py)
    assert p.stderr.count('--- Logging error ---') == 2, p.stderr
    assert 'a real number is required' in p.stderr and 'not enough arguments for format string' in p.stderr
    assert p.stderr.count('logfunnel: LOGFUNNEL_ERR_RECORD_TOO_LARGE: record of ') == 1, p.stderr
    writer.wait_for_lines(3)
    summary = writer.stop()
    assert summary['records'] == 3 and count_lines(writer.file) == 3
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', '3'), 3, 1)
    with open(writer.file, encoding='utf-8') as f:
        assert [(r['seq'], r['msg']) for r in map(json.loads, f)] == [(0, 'a'), (1, 'b'), (2, 'c')]


SIGNALS = '''import json, logging, os, signal, sys, threading, time
import logfunnel
log = logging.getLogger(); log.setLevel(logging.INFO)
log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq'))
kicks = int(sys.argv[2])
main_log = sig_log = log
''' + SIGNAL_KICKS


def test_a_signal_handler_logging_inside_a_log_call_keeps_seq_order(writer_factory, run_code):
    """SIGUSR1 sent to itself 300 times while the main thread logs: the handler's record
    often lands between a record's seq and its queueing (before, ~1 in 10 was reordered)."""
    run_signal_kicks(writer_factory(), run_code, SIGNALS, 300)


QUEUE_LISTENER = '''import logging, logging.handlers, multiprocessing as mp, sys

def worker(q, i, per):
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(q)]
    root.setLevel(logging.INFO)
    for j in range(per):
        logging.info('worker %d record %d', i, j)

if __name__ == '__main__':
    import logfunnel
    ctx = mp.get_context(sys.argv[2])
    workers, per = int(sys.argv[3]), int(sys.argv[4])
    q = ctx.Queue(-1)
    handler = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq')
    listener = logging.handlers.QueueListener(q, handler)
    listener.start()
    ps = [ctx.Process(target=worker, args=(q, i, per)) for i in range(workers)]
    [p.start() for p in ps]
    [p.join() for p in ps]
    listener.stop()
    handler.close()
'''


def test_queue_listener_records_count_per_worker(writer_factory, procs, tmp_path):
    """The logging cookbook's pattern: workers' QueueHandler, one LogfunnelHandler behind a
    QueueListener in the parent. Lines carry the worker's pid; before, one counter for all of
    them made verify report 4,450 gaps for 2,000 records."""
    script = tmp_path / 'queue_listener.py'
    script.write_text(QUEUE_LISTENER)
    writer = writer_factory()
    workers, per = 4, 500
    p = Proc([PYTHON, str(script), writer.endpoint, 'spawn', str(workers), str(per)], cwd=str(tmp_path))
    procs.append(p)
    assert p.wait() == 0 and p.stderr == ''
    total = workers * per
    writer.wait_for_lines(total)
    summary = writer.stop()
    assert summary['records'] == total and count_lines(writer.file) == total
    assert_clean(verify(writer.file, '--expect-total', str(total)), total, workers)


RECONFIGURED = '''import logging, logging.config, sys
endpoint, ini, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = {'version': 1, 'handlers': {'funnel': {'class': 'logfunnel.LogfunnelHandler', 'endpoint': endpoint,
                                                'seq_key': 'seq', 'level': 'INFO'}},
          'root': {'handlers': ['funnel'], 'level': 'INFO'}}
logging.config.dictConfig(config)
log = logging.getLogger('app')
for i in range(n):
    log.info('first %d', i)
logging.config.dictConfig({'version': 1, 'incremental': True, 'handlers': {'funnel': {'level': 'WARNING'}}})
for i in range(n):
    log.info('filtered %d', i)
    log.warning('incremental %d', i)
logging.config.dictConfig(dict(config, disable_existing_loggers=False))
for i in range(n):
    log.info('reconfigured %d', i)
logging.config.fileConfig(ini, disable_existing_loggers=False)
for i in range(n):
    log.info('from fileConfig %d', i)
'''

RECONFIGURED_INI = '''[loggers]
keys=root
[handlers]
keys=funnel
[formatters]
keys=
[logger_root]
level=INFO
handlers=funnel
[handler_funnel]
class=logfunnel.LogfunnelHandler
level=INFO
args=(%r,)
kwargs={'seq_key': 'seq'}
'''


def test_a_reconfiguration_continues_seq(writer_factory, run_code, tmp_path):
    """dictConfig and fileConfig close the handlers they replace, then make new ones (as
    frameworks do at start: a default configuration, then the application's). The new handler
    for the same writer and seq_key goes on from the closed one's seq; before, it counted from 0
    again, and verify reported a correct file as 2,000 duplicates (and 2,000 missing) of 4,000
    records."""
    writer = writer_factory()
    ini = tmp_path / 'logging.ini'
    ini.write_text(RECONFIGURED_INI % writer.endpoint)
    n = 1000
    p = run_code(RECONFIGURED, writer.endpoint, str(ini), str(n))
    assert p.wait() == 0 and p.stderr == ''
    writer.wait_for_lines(4 * n)
    summary = writer.stop(spool_taken=True)
    assert summary['records'] == 4 * n and count_lines(writer.file) == 4 * n
    assert_clean(verify(writer.file, '--key', 'pid', '--expect', str(4 * n)), 4 * n, 1)
    with open(writer.file, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    assert [r['seq'] for r in records] == list(range(4 * n))
    assert [r['msg'] for r in records[n - 1:n + 1] + records[-1:]] == ['first %d' % (n - 1), 'incremental 0', 'from fileConfig %d' % (n - 1)]
