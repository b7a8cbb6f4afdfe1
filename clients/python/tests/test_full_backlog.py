"""A writer that is there but takes no more connections (its ipc socket's backlog is full: a
burst of new producers, handlers made per request): a close that ends with the records in the
spool does not say the writer was not reached."""

import pytest

from conftest import count_lines, verify

BACKLOG_FULL = '''import logging, os, socket, sys
import logfunnel
endpoint, how = sys.argv[1], sys.argv[2]
path = endpoint[len('ipc://'):]
# The writer's two sockets, held by listeners that accept nothing, their backlogs filled: each
# new connect is refused at once with EAGAIN, as a writer too busy to accept refuses them.
listeners, waiting = [], []
for p in (path, path + '.receipts'):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(p)
    listener.listen(0)
    listeners.append(listener)
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(p)
        except BlockingIOError:
            s.close()
            break
        waiting.append(s)
log = logging.getLogger('busy'); log.setLevel(logging.INFO); log.propagate = False
h = logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq')
log.addHandler(h)
for i in range(10):
    log.info('record %d', i)
log.removeHandler(h)
if how == 'closed':
    h.close()
else:
    del h  # a handler made per request and dropped: closed by a thread of its own
# The listeners stay until the process has ended (after the exit hooks): the writer is there.
'''


@pytest.mark.parametrize('how', ['closed', 'dropped'])
def test_a_full_backlog_is_not_reported_as_no_writer(writer_factory, run_code, how):
    # Before: 'LOGFUNNEL_ERR_CONNECT: no writer answered at ipc://... within 101 ms: nothing
    # accepted the connection' (libzmq retries a connect refused with EAGAIN as one refused with
    # ECONNREFUSED), of a writer that was running. Now a plain connect tells the two apart: a
    # close says what a close with the writer away says (the dropped handler's, at the end of the
    # process, nothing; past a second, that the socket takes no more connections), and the writer
    # takes the records from the spool.
    writer = writer_factory(start=False)
    p = run_code(BACKLOG_FULL, writer.endpoint, how)
    assert p.wait() == 0
    said = p.stderr.splitlines()
    if said and said[0].startswith('logfunnel: LOGFUNNEL_ERR_CONNECT: '):
        # A close that came a second or more after the connect (a loaded machine) says why the
        # writer took no connection, as of one accepted and never answered.
        assert len(said) == 1 and said[0].split(' within ')[1].split(': ', 1)[1].startswith(
            'the socket takes no more connections (its backlog is full: a writer stopped, or too busy to accept them)'), p.stderr
    elif how == 'closed':
        assert len(said) == 1 and said[0].startswith('logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: close ended before its '
                                                    '10000 ms deadline: the writer does not answer: 10 records'), p.stderr
    else:
        assert p.stderr == ''
    assert len(writer.spool_files()) == 1
    writer.start()
    writer.wait_for_lines(10)
    assert writer.stop()['records'] == 10 and count_lines(writer.file) == 10
    assert verify(writer.file, '--expect', '10')['ok']
