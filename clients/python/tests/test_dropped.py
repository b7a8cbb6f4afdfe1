"""A client or handler dropped without close(): its records are still confirmed (or spooled),
then its thread, sockets and state go; nothing accumulates per dropped logger."""

import json

from conftest import assert_unreached_reported, count_lines, verify

DROP = '''import gc, json, logging, os, sys, time
import logfunnel
from logfunnel import exit as lf_exit
endpoint, requests, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
log = logging.getLogger('req'); log.setLevel(logging.INFO); log.propagate = False

def state():
    # OS threads: the package's are not threading's (logfunnel/_native.py)
    return {'threads': len(os.listdir('/proc/self/task')), 'fds': len(os.listdir('/proc/self/fd')),
            'producers': len(lf_exit.live_clients())}

base = state()
for r in range(requests):
    # a logger created per request and dropped: never closed
    h = logfunnel.LogfunnelHandler(endpoint=endpoint)
    log.addHandler(h)
    for i in range(per):
        log.info('request %d record %d', r, i)
    log.removeHandler(h)
    del h
    c = logfunnel.Client(endpoint)
    c.send(json.dumps({'level': 30, 'msg': 'client %d' % r}))
    del c
# What stays is the process's one signal watcher (lf_exit): a thread and its socket pair; and its
# one ZeroMQ context (_context): its reaper and I/O threads, and the descriptors of its term
# mailbox, reaper and I/O thread.
settled = {'threads': base['threads'] + 1 + 2, 'fds': base['fds'] + 2 + 5, 'producers': 0}
deadline = time.monotonic() + 30
now = state()
while now != settled and time.monotonic() < deadline:
    gc.collect()
    time.sleep(0.02)
    now = state()
print(json.dumps({'event': 'done', 'base': base, 'after': now}), flush=True)
'''


def test_dropped_handlers_and_clients_deliver_then_go(writer_factory, run_code):
    writer = writer_factory()
    requests, per = 60, 10
    p = run_code(DROP, writer.endpoint, str(requests), str(per))
    done = p.wait_event('done', timeout=60)
    # one signal watcher per process (a thread, two descriptors) and one ZeroMQ context (two
    # threads of libzmq's, five descriptors), nothing per dropped logger
    assert done['after'] == {'threads': done['base']['threads'] + 1 + 2, 'fds': done['base']['fds'] + 2 + 5, 'producers': 0}
    assert p.wait() == 0 and p.stderr == ''
    total = requests * per + requests
    writer.wait_for_lines(total)
    summary = writer.stop()
    assert summary['records'] == total and count_lines(writer.file) == total
    assert verify(writer.file, '--expect', str(total))['lines'] == total


DROP_AND_END = '''import logging, sys
import logfunnel
log = logging.getLogger('req'); log.setLevel(logging.INFO); log.propagate = False
for r in range(int(sys.argv[2])):
    h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], close_timeout=0.3)
    log.addHandler(h)
    for i in range(int(sys.argv[3])):
        log.info('request %d record %d', r, i)
    log.removeHandler(h)
    del h
'''


def test_dropped_handlers_spool_when_the_writer_is_away(writer_factory, run_code):
    """Writer down, the script drops its handlers and just ends: made with the same options they
    share one client (_sharing.py), whose records go to the spool at its close deadline, saying
    once that no writer was reached (before, each handler a client, a spool file and a report of
    its own: 20 of each); the writer ingests every one."""
    writer = writer_factory(start=False)
    requests, per = 20, 50
    p = run_code(DROP_AND_END, writer.endpoint, str(requests), str(per))
    assert p.wait() == 0
    assert_unreached_reported(p.stderr, 1)
    assert len(writer.spool_files()) == 1
    total = requests * per
    writer.start()
    writer.wait_for_lines(total)
    summary = writer.stop()
    assert summary['records'] == total and count_lines(writer.file) == total and writer.spool_files() == []


SLOW_REPORT = '''import logging, sys, threading
import logfunnel
from logfunnel import _closing
reporting = threading.Event()
report = _closing.Closer._report_unreached

def slow_report(self, *args):
    # The dropped handler's close (a thread of its own) has closed its sockets and is about to
    # report: the script ends now, while the report takes its time.
    reporting.set()
    threading.Event().wait(0.5)
    report(self, *args)

_closing.Closer._report_unreached = slow_report
log = logging.getLogger('req'); log.setLevel(logging.INFO); log.propagate = False
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], close_timeout=0.3)
log.addHandler(h)
for i in range(50):
    log.info('record %d', i)
log.removeHandler(h)
del h
assert reporting.wait(10)
'''


def test_the_end_of_the_script_waits_for_a_dropped_handlers_close_in_progress(writer_factory, run_code):
    """A dropped handler is closed by a thread of its own; the script ends while that close is
    reporting that no writer was reached. The exit hooks wait for it to end. Before, they found
    the producer closed (its sockets were) and returned, and the interpreter ended the closing
    thread mid-report: no word (test_dropped_handlers_spool_when_the_writer_is_away: 19 reports
    of 20 now and then)."""
    writer = writer_factory(start=False)
    p = run_code(SLOW_REPORT, writer.endpoint)
    assert p.wait() == 0
    assert_unreached_reported(p.stderr, 1)
    writer.start()
    writer.wait_for_lines(50)
    assert writer.stop()['records'] == 50
