"""Python's development mode (``-X dev``) and warnings made errors (``-W error``), as test
suites and careful applications run: a script that logs and ends, and a pool, say nothing."""

import os

import pytest

from conftest import PYTHON, Proc, assert_clean, verify

SCRIPT = '''import logging, multiprocessing, os, sys
import logfunnel
log = logging.getLogger('dev'); log.setLevel(logging.INFO); log.propagate = False
log.addHandler(logfunnel.LogfunnelHandler(sys.argv[1], seq_key='seq'))

def work(task):
    for i in range(500):
        log.info('task %d record %d', task, i)

if __name__ == '__main__':
    for i in range(1000):
        log.info('main %d', i)
    if sys.argv[2] != 'script':
        with multiprocessing.get_context(sys.argv[2]).Pool(2) as pool:
            pool.map(work, range(4))
'''


@pytest.mark.parametrize('how', ['script', 'fork', 'spawn'])
def test_dev_mode_and_warnings_as_errors_say_nothing(writer_factory, procs, tmp_path, how):
    # Before, every process that logged ended with 'ResourceWarning: unclosed <socket.socket
    # fd=4, family=1, type=2 ...>' (-X dev; with -W error, 'Exception ignored in: ...'): the
    # signal watcher's wakeup socket, collected at the interpreter's teardown.
    writer = writer_factory()
    script = os.path.join(str(tmp_path), 'dev.py')  # a file: spawn's children import __main__ from it
    with open(script, 'w') as f:
        f.write(SCRIPT)
    p = Proc([PYTHON, '-X', 'dev', '-W', 'error', script, writer.endpoint, how], cwd=str(tmp_path))
    procs.append(p)
    assert p.wait() == 0, p.stderr
    assert p.stderr == ''
    lines = 1000 if how == 'script' else 3000
    writer.wait_for_lines(lines)
    writer.stop(spool_taken=True)
    assert_clean(verify(writer.file), lines, None)
