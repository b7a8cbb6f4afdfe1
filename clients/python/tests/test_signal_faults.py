"""A fatal signal ends the process by that signal whatever goes wrong while its handler spools:
an exception in the spool path or in the flush of deferred records is reported with the count
of records it cost, and the process still dies by the signal (before, the exception came out
of the handler into the application, and the process went on or ended otherwise)."""

import json
import signal

import pytest

from conftest import assert_clean, verify

N = 1000
DEFERRED = 5

SCRIPT = '''import json, logging, os, signal, sys
import logfunnel
from logfunnel import spool
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', spool_after=0)
log = logging.getLogger('s'); log.addHandler(h); log.setLevel(logging.INFO); log.propagate = False
for i in range(%d):
    log.info('record %%d', i)
if sys.argv[2] == 'spool':
    def append(self, header, payload):
        raise RuntimeError('a bug in the spool path')
    spool.SpoolWriter.append = append
else:
    # Records an interrupted emit left deferred (a signal handler logged during it), and a
    # KeyboardInterrupt (a second signal) while they are sent at the end.
    h._sequence.deferred.extend((h, log.makeRecord('s', logging.INFO, 'script', 0, 'deferred %%d', (i,), None)) for i in range(%d))
    def interrupted(*args):
        raise KeyboardInterrupt
    h._format = interrupted
print(json.dumps({'event': 'signal'}), flush=True)
os.kill(os.getpid(), signal.SIGTERM)
print(json.dumps({'event': 'alive'}), flush=True)
''' % (N, DEFERRED)


@pytest.mark.parametrize('fault', ['spool', 'deferred'])
def test_an_exception_while_a_fatal_signal_spools_still_ends_the_process_by_it(writer_factory, run_code, fault):
    writer = writer_factory(start=False)
    p = run_code(SCRIPT, writer.endpoint, fault)
    p.wait_event('signal')
    assert p.wait() == -signal.SIGTERM, p.stderr
    assert not any('"alive"' in line for line in p.stdout)
    if fault == 'spool':
        # No writer was reached: nothing was sent, all of them are lost.
        assert p.stderr == ('logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: SIGTERM: %d records without a receipt lost, never '
                            'sent (RuntimeError: a bug in the spool path)\n' % N), p.stderr
        assert writer.spool_files() == []
        return
    assert p.stderr == ('logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: %d records logged from a signal handler during an emit '
                        'lost at the end of the process (KeyboardInterrupt: )\n' % DEFERRED), p.stderr
    # What was held went to the spool before: the writer takes every record of it.
    writer.start()
    writer.wait_for_lines(N)
    assert writer.stop()['records'] == N
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)
    with open(writer.file, encoding='utf-8') as f:
        assert [json.loads(line)['seq'] for line in f] == list(range(N))
