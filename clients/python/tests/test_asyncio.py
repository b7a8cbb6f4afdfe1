"""asyncio's signal handlers and the package's: ``loop.add_signal_handler(SIGTERM, ...)`` replaces
the package's handler, and the loop's close (``asyncio.run()`` returning) sets SIGTERM back to
SIG_DFL, not to it. A process that logs on after its loop must still spool at SIGTERM."""

import json
import signal

from conftest import verify


def test_sigterm_after_asyncio_run(writer_factory, run_python):
    """The script logs 1 record, 100 in an asyncio.run() whose loop handles SIGTERM, then more
    after it until SIGTERM is not at SIG_DFL (at most 5 s), gathering them for batch_delay 1 s;
    then SIGTERM. Before, SIGTERM stayed at SIG_DFL (for the 5 s): the process ended with nothing
    spooled, and what was gathered then was lost (1 and 134 records in 2 runs); now the main
    thread's next log call after the loop's close installs the package's handler again (within
    RECHECK, 20 ms), and its signal watcher's wakeup fd (asyncio's close set none): every record
    is in the file (through the spool), and the process still ends by SIGTERM."""
    writer = writer_factory()
    p = run_python('asyncio_after.py', env={'LOGFUNNEL_ENDPOINT': writer.endpoint})
    logged = p.wait_event('logged')
    assert logged['sigterm'] == '_on_fatal_signal' and logged['wakeup_fd'] != -1, logged
    p.proc.send_signal(signal.SIGTERM)
    assert p.wait(30) == -signal.SIGTERM, p.stderr
    total = logged['count']
    writer.wait_for_lines(total, 15)
    assert writer.stop(spool_taken=True)['records'] == total
    with open(writer.file, encoding='utf-8') as f:
        records = [json.loads(line) for line in f]
    assert sorted(r['n'] for r in records) == list(range(total))
    assert sum(r['msg'] == 'in the loop' for r in records) == 100
    report = verify(writer.file, '--expect-total', str(total))
    assert {k: report[k] for k in ('lines', 'gaps', 'duplicates', 'reordered', 'torn', 'ok')} == \
        {'lines': total, 'gaps': 0, 'duplicates': 0, 'reordered': 0, 'torn': 0, 'ok': True}
    assert p.stderr == ''
