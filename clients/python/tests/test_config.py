"""Configuration as Python users write it: dictConfig, fileConfig, CURVE; connect and
handshake failures reported once through logging's handleError, records kept."""

import json
import os
import re
import shutil
import signal
import socket
import threading
import subprocess
import tempfile
import time

import pytest
import zmq

from conftest import BIN, NODE, PYTHON, Proc, Writer, assert_clean, assert_reported_once, verify

N = 1000

DICT = '''import logging, logging.config, sys, json
logging.config.dictConfig({'version': 1, 'handlers': {'funnel': {
    'class': 'logfunnel.LogfunnelHandler', 'level': 'INFO', **json.loads(sys.argv[1])}},
    'root': {'handlers': ['funnel'], 'level': 'DEBUG'}})
log = logging.getLogger('cfg')
log.debug('not written')
for i in range(%d):
    log.info('record %%d', i)
logging.shutdown()
print('{"event": "done"}')
''' % N


def test_dict_config(writer_factory, run_code):
    writer = writer_factory()
    p = run_code(DICT, json.dumps({'endpoint': writer.endpoint, 'seq_key': 'seq', 'close_timeout': 20, 'max_batch_bytes': 4096}))
    p.wait_event('done')
    assert p.wait() == 0 and p.stderr == ''
    assert writer.stop(spool_taken=True)['records'] == N
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)


def test_file_config(writer_factory, run_code, tmp_path):
    writer = writer_factory()
    ini = tmp_path / 'logging.ini'
    ini.write_text('''[loggers]
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
kwargs={'seq_key': 'seq', 'on_full': 'spool'}
''' % writer.endpoint)
    code = 'import logging, logging.config, sys\nlogging.config.fileConfig(sys.argv[1])\n' \
           'for i in range(%d):\n    logging.getLogger("ini").info("r %%d", i)\nlogging.shutdown()\n' % N
    p = run_code(code, str(ini))
    assert p.wait() == 0 and p.stderr == ''
    assert writer.stop(spool_taken=True)['records'] == N
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)


RECONFIGURE = '''import json, logging, logging.config, sys, threading, time
endpoint, how, ini = sys.argv[1:]


def configure():
    if how == 'dictConfig':
        logging.config.dictConfig({'version': 1, 'disable_existing_loggers': False, 'handlers': {'funnel': {
            'class': 'logfunnel.LogfunnelHandler', 'endpoint': endpoint, 'seq_key': 'seq'}},
            'root': {'handlers': ['funnel'], 'level': 'INFO'}})
    else:
        logging.config.fileConfig(ini, disable_existing_loggers=False)


configure()
stop = threading.Event()
logged = [0, 0]


def work(k):
    log = logging.getLogger('worker%d' % k)
    while not stop.is_set():
        log.info('record %d', logged[k])
        logged[k] += 1


threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
for t in threads:
    t.start()
for _ in range(30):  # the application reloads its logging configuration while the workers log
    time.sleep(0.01)
    configure()
stop.set()
for t in threads:
    t.join()
print(json.dumps({'event': 'done', 'logged': sum(logged)}), flush=True)
'''


@pytest.mark.parametrize('how', ['dictConfig', 'fileConfig'])
def test_a_reconfigure_at_runtime_loses_nothing_other_threads_log(writer_factory, run_code, tmp_path, how):
    """dictConfig and fileConfig close the old handlers, then make the new ones, while other
    threads still log through the old one. Its records now take the client again (the new
    handler then shares it), as a closed FileHandler opens its file again. Before, they were
    dropped with LOGFUNNEL_ERR_CLOSED: 9 to 13 of about 45,000 records in 20 reconfigures."""
    writer = writer_factory()
    ini = tmp_path / 'logging.ini'
    ini.write_text('[loggers]\nkeys=root\n[handlers]\nkeys=funnel\n[formatters]\nkeys=\n[logger_root]\nlevel=INFO\n'
                   'handlers=funnel\n[handler_funnel]\nclass=logfunnel.LogfunnelHandler\nargs=(%r,)\n'
                   "kwargs={'seq_key': 'seq'}\n" % writer.endpoint)
    p = run_code(RECONFIGURE, writer.endpoint, how, str(ini))
    logged = p.wait_event('done', timeout=60)['logged']
    assert p.wait() == 0 and p.stderr == ''
    writer.wait_for_lines(logged)
    assert writer.stop(spool_taken=True)['records'] == logged
    assert_clean(verify(writer.file, '--expect', str(logged)), logged, 1)


RELOAD_ON_HUP = '''import json, logging, logging.config, os, signal, sys, threading, time
endpoint, kicks = sys.argv[1], int(sys.argv[2])


def configure():
    logging.config.dictConfig({'version': 1, 'disable_existing_loggers': False, 'handlers': {'funnel': {
        'class': 'logfunnel.LogfunnelHandler', 'endpoint': endpoint, 'seq_key': 'seq'}},
        'root': {'handlers': ['funnel'], 'level': 'INFO'}})


configure()
reloads = [0]


def on_hup(signum, frame):  # a daemon's "reload your configuration"
    configure()
    reloads[0] += 1


signal.signal(signal.SIGHUP, on_hup)


def kicker():
    # One signal at a time: two pending at once would be run once.
    deadline = time.monotonic() + 60
    for k in range(kicks):
        os.kill(os.getpid(), signal.SIGHUP)
        while reloads[0] <= k and time.monotonic() < deadline:
            time.sleep(0.001)


t = threading.Thread(target=kicker)
t.start()
log = logging.getLogger('main')
logged = 0
while t.is_alive():
    log.info('main %d', logged)
    logged += 1
print(json.dumps({'event': 'done', 'logged': logged, 'reloads': reloads[0]}), flush=True)
'''


def test_a_reconfigure_from_a_signal_handler_keeps_every_record_in_order(writer_factory, run_code):
    """SIGHUP's handler calls dictConfig while the main thread logs: it closes the handler (and
    its client) inside whatever log call it interrupted, often as that call's client starts its
    sender. Before, that record went to the spool, which the writer took after the records logged
    later (33 to 49 reordered in 200 reloads), or, logged through the closed handler, was dropped
    with LOGFUNNEL_ERR_CLOSED (14 in 200); now every record once, in order."""
    writer = writer_factory()
    p = run_code(RELOAD_ON_HUP, writer.endpoint, '200')
    done = p.wait_event('done', timeout=90)
    assert p.wait() == 0 and p.stderr == ''
    assert done['reloads'] == 200
    logged = done['logged']
    writer.wait_for_lines(logged)
    assert writer.stop(spool_taken=True)['records'] == logged
    assert_clean(verify(writer.file, '--expect', str(logged)), logged, 1)


# SIGHUP's handler (dictConfig) made to run inside send(), with the producer's lock held, just
# as the first record's sender thread has started (its start's last call, _forks.say_no_threads,
# sends the signal): the close it makes must not wait for a sender that needs that lock.
RELOAD_INSIDE_SEND = '''import json, logging, logging.config, os, signal, sys, time
import logfunnel._forks as forks
endpoint = sys.argv[1]


def configure():
    logging.config.dictConfig({'version': 1, 'disable_existing_loggers': False, 'handlers': {'funnel': {
        'class': 'logfunnel.LogfunnelHandler', 'endpoint': endpoint, 'seq_key': 'seq'}},
        'root': {'handlers': ['funnel'], 'level': 'INFO'}})


reloads = []
signal.signal(signal.SIGHUP, lambda *_: (configure(), reloads.append(1)))
said = forks.say_no_threads


def kick():
    if not reloads and sys._getframe(1).f_code.co_name == '_start':
        os.kill(os.getpid(), signal.SIGHUP)  # runs at the next call, still in send()
    return said()


forks.say_no_threads = kick
configure()
log = logging.getLogger('main')
start = time.monotonic()
for n in range(100):
    log.info('main %d', n)
print(json.dumps({'event': 'done', 'reloads': len(reloads), 'took': time.monotonic() - start}), flush=True)
'''


def test_a_reconfigure_from_a_signal_handler_inside_send(writer_factory, run_code):
    """SIGHUP's handler reconfigures (dictConfig closes the handler and its client) while the main
    thread is inside send() with the producer's lock held, its sender thread just started. Before,
    the close waited for that sender to end while this thread held the lock the sender needed:
    30 s (the sender's STALL), then 'LOGFUNNEL_ERR_SENDER_FAILED: the sender thread gave no sign
    of life for 30 s' (by chance 1 of 47 runs of the test above; here each time). Now the close
    lets the lock go while it waits: the 100 records in order, within seconds, nothing said."""
    writer = writer_factory()
    p = run_code(RELOAD_INSIDE_SEND, writer.endpoint)
    done = p.wait_event('done', timeout=90)
    assert p.wait() == 0 and p.stderr == ''
    assert done['reloads'] == 1 and done['took'] < 10, done
    writer.wait_for_lines(100)
    assert writer.stop(spool_taken=True)['records'] == 100
    assert_clean(verify(writer.file, '--expect', '100'), 100, 1)


def keygen(path):
    out = subprocess.run([NODE, BIN, 'keygen'], capture_output=True, check=True, timeout=30).stdout
    path.write_bytes(out)
    return json.loads(out)


def test_curve_with_keygen_files_and_with_keys(writer_factory, run_code, tmp_path):
    assert zmq.has('curve')
    server = keygen(tmp_path / 'server.json')
    client = keygen(tmp_path / 'client.json')
    writer = writer_factory(['--curve-secret-key-file', str(tmp_path / 'server.json'), '--curve-allowed-keys=' + client['publicKey']])
    by_file = {'endpoint': writer.endpoint, 'seq_key': 'seq', 'curve_server_key': server['publicKey'], 'curve_key_file': str(tmp_path / 'client.json')}
    by_key = {'endpoint': writer.endpoint, 'seq_key': 'seq', 'curve_server_key': server['publicKey'], 'curve_secret_key': client['secretKey']}
    for opts in (by_file, by_key):
        p = run_code(DICT, json.dumps(opts))
        p.wait_event('done')
        assert p.wait() == 0 and p.stderr == ''
    assert writer.stop(spool_taken=True)['records'] == 2 * N
    assert_clean(verify(writer.file, '--expect', str(N)), 2 * N, 2)


# close()'s own report when it ended with records in the spool (as Node's close says it after a
# connect failure reported while it ran): at most one, after the failure's.
SPOOLED_AT_CLOSE = re.compile(r'logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: close (?:ended before its \d+ ms deadline: the writer '
                              r'does not answer|took longer than \d+ ms): \d+ records without a receipt went to the spool '
                              r'in [^\n]+, where the writer ingests them\n')


def assert_reported_once_and_all_written(p, writer, code):
    """The producer exits 0 having reported ``code`` once through handleError (and at most once
    what its close put in the spool); all N records are in the file."""
    p.wait_event('done')
    assert p.wait() == 0
    rest, closes = SPOOLED_AT_CLOSE.subn('', p.stderr)
    assert closes <= 1, p.stderr
    assert_reported_once(rest, code)
    writer.wait_for_lines(N)
    assert writer.stop()['records'] == N
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)


def test_connect_failure_reported_once_records_kept(writer_factory, run_code):
    """No writer at the endpoint: LOGFUNNEL_ERR_CONNECT once via handleError; the records are
    kept and reach the file when the writer comes."""
    writer = writer_factory(start=False)
    flag = writer.file + '.go'
    code = DICT.replace("logging.shutdown()", "import os, time\nwhile not os.path.exists(sys.argv[2]): time.sleep(0.02)\nlogging.shutdown()")
    p = run_code(code, json.dumps({'endpoint': writer.endpoint, 'seq_key': 'seq', 'connect_timeout': 0.3, 'close_timeout': 20}), flag)
    deadline = time.monotonic() + 10
    while 'logfunnel: LOGFUNNEL_ERR_CONNECT' not in p.stderr:
        assert time.monotonic() < deadline and p.proc.poll() is None, p.stderr
        time.sleep(0.02)
    writer.start()
    open(flag, 'w').close()
    assert_reported_once_and_all_written(p, writer, 'LOGFUNNEL_ERR_CONNECT')


def test_handshake_failure_reported_once_records_spooled(writer_factory, run_code, tmp_path):
    """A wrong CURVE server key: LOGFUNNEL_ERR_HANDSHAKE once via handleError; close()'s
    deadline spools the records, and the writer ingests them. (spool_after 0: nothing is copied
    to the spool meanwhile, so close() waits its deadline, past connect_timeout; with copies it
    ends once they are all in the spool, before the report: test_close.py.)"""
    server = keygen(tmp_path / 'server.json')
    client = keygen(tmp_path / 'client.json')
    wrong = keygen(tmp_path / 'wrong.json')
    writer = writer_factory(['--curve-secret-key-file', str(tmp_path / 'server.json'), '--curve-allowed-keys=' + client['publicKey']])
    opts = {'endpoint': writer.endpoint, 'seq_key': 'seq', 'curve_server_key': wrong['publicKey'],
            'curve_key_file': str(tmp_path / 'client.json'), 'connect_timeout': 0.3, 'close_timeout': 1, 'spool_after': 0}
    p = run_code(DICT, json.dumps(opts))
    assert_reported_once_and_all_written(p, writer, 'LOGFUNNEL_ERR_HANDSHAKE')


def test_a_handler_refused_for_a_bad_option_leaves_the_exit_quiet(run_code, tmp_path):
    """The constructor raises ValueError for a bad option; logging already lists the half-made
    handler and flushes it at exit: that must not print a traceback (it printed an
    AttributeError from logging's atexit hook)."""
    p = run_code('''import logfunnel, sys
try:
    logfunnel.LogfunnelHandler(sys.argv[1], high_water_mark=1024)
except ValueError as err:
    print('{"event": "refused", "message": "%s"}' % err, flush=True)
''', 'ipc://%s' % (tmp_path / 'w.sock'))
    assert 'high_water_mark' in p.wait_event('refused')['message']
    assert p.wait() == 0 and p.stderr == ''


UNREACHED = '''import json, logging, sys, time
import logfunnel
h = logfunnel.LogfunnelHandler(seq_key='seq', **json.loads(sys.argv[1]))
log = logging.getLogger('unreached'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
for i in range(%d):
    log.info('record %%d', i)
if sys.argv[2] == 'close':
    h.close()
    print(json.dumps({'event': 'closed', 'stats': h.client.stats}), flush=True)
''' % N
CONNECT_TIMEOUT = 30.0


def tcp_port_pair():
    """A loopback port p with p + 1 free too (the writer's receipt port), both bound, for the
    caller to close when it wants the ports free."""
    while True:
        first = socket.socket()
        first.bind(('127.0.0.1', 0))
        second = socket.socket()
        try:
            second.bind(('127.0.0.1', first.getsockname()[1] + 1))
            return first, second
        except OSError:
            first.close()
            second.close()


def answer_http(listener):
    """Until the listener is closed: each connection gets an HTTP error, then is closed."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            try:
                conn.sendall(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')
            except OSError:
                pass


@pytest.mark.parametrize('end', ['close', 'exit'])
@pytest.mark.parametrize('wrong', ['nothing-listens', 'not-zeromq', 'curve-key'])
def test_a_close_that_ends_before_connect_timeout_reports_the_unreached_writer(writer_factory, run_code, procs, tmp_path,
                                                                              wrong, end):
    """No writer reachable (nothing listens at the endpoint; a tcp port whose listener is not
    a writer; a wrong CURVE server key): close(), or the handler's close at interpreter exit,
    ends once everything is in the spool, long before connect_timeout. It reports the failure
    once through handleError (before, nothing was said: a wrong endpoint or key in a short-lived
    process left every record in a spool no writer takes, in silence); the records are kept."""
    opts = {'connect_timeout': CONNECT_TIMEOUT}
    code = 'LOGFUNNEL_ERR_CONNECT' if wrong == 'nothing-listens' else 'LOGFUNNEL_ERR_HANDSHAKE'
    listener = None
    if wrong == 'not-zeromq':
        listener, receipt_port = tcp_port_pair()
        receipt_port.close()
        listener.listen(8)
        # Not a writer: it answers every connection with an HTTP error and closes it.
        threading.Thread(target=answer_http, args=(listener,), daemon=True).start()
        endpoint = 'tcp://127.0.0.1:%d' % listener.getsockname()[1]
        writer = Writer(procs, str(tmp_path), ['--spool-dir', str(tmp_path / 'spool')])
        writer.endpoint = endpoint
        opts.update(endpoint=endpoint, spool_dir=str(tmp_path / 'spool'))
    elif wrong == 'curve-key':
        server, client, other = (keygen(tmp_path / name) for name in ('server.json', 'client.json', 'other.json'))
        writer = writer_factory(['--curve-secret-key-file', str(tmp_path / 'server.json'), '--curve-allowed-keys=' + client['publicKey']])
        opts.update(endpoint=writer.endpoint, curve_server_key=other['publicKey'], curve_key_file=str(tmp_path / 'client.json'))
    else:
        writer = writer_factory(start=False)
        opts.update(endpoint=writer.endpoint)
    began = time.monotonic()
    try:
        p = run_code(UNREACHED, json.dumps(opts), end)
        if end == 'close':
            stats = p.wait_event('closed', CONNECT_TIMEOUT)['stats']
            assert (stats['records'], stats['spooled_records'], stats['confirmed'], stats['lost']) == (N, N, 0, 0), stats
        assert p.wait(CONNECT_TIMEOUT) == 0
        assert time.monotonic() - began < CONNECT_TIMEOUT / 3
    finally:
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)  # wakes answer_http's accept(), so the port is free for the writer
            listener.close()
    assert_reported_once(p.stderr, code)
    assert 'closed before connect_timeout (30000 ms), with %d records without a receipt in the spool' % N in p.stderr, p.stderr
    # close() says how it ended, in the same report, as the Node producer's does; the end of the process does not.
    assert ('where a writer on this endpoint takes them; close ended before its 10000 ms deadline: the writer does not answer'
            in p.stderr) == (end == 'close'), p.stderr
    if wrong == 'nothing-listens':
        # The Node producer's words: an ipc endpoint with no socket says so.
        assert 'no socket at that path (is the writer running?); closed before' in p.stderr, p.stderr
    if not writer.proc:
        writer.start()
    writer.wait_for_lines(N)
    assert writer.stop()['records'] == N
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)


def test_a_second_of_silence_over_ipc_is_no_evidence_of_an_unreached_writer(tmp_path):
    """The kernel answers an ipc connect at once, so a close that saw neither answer (libzmq's
    events not read yet on a loaded machine) does not say "nothing accepted the connection" of a
    writer whose socket is there; a socket that is not there, a connection accepted and never
    answered, and a tcp connect unanswered for a second are said (the Node producer's rule)."""
    from logfunnel.wire import HandshakeWatch
    sock = tmp_path / 'w.sock'
    sock.touch()

    def watch(endpoint):
        w = HandshakeWatch(endpoint, 10.0, False)
        w.started -= 2  # past UNREACHED_AT_CLOSE_AFTER
        return w

    silent = watch('ipc://%s' % sock)
    assert silent.evident(time.monotonic()) and not silent.says_unreached(time.monotonic())
    silent.connected = True
    assert silent.says_unreached(time.monotonic())
    assert watch('ipc://%s' % (tmp_path / 'none.sock')).says_unreached(time.monotonic())
    assert watch('tcp://127.0.0.1:5999').says_unreached(time.monotonic())
    young = HandshakeWatch('ipc://%s' % sock, 10.0, False)
    young.connected = True
    assert not young.says_unreached(time.monotonic())


DEFAULT_ENDPOINT = '''import json, logging
import logfunnel
h = logfunnel.LogfunnelHandler(seq_key='seq')
log = logging.getLogger('default'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
for i in range(100):
    log.info('record %d', i)
h.close()
print(json.dumps({'event': 'done', 'endpoint': h.client.endpoint, 'stats': h.client.stats}), flush=True)
'''


def test_the_default_endpoint_is_the_writers_with_tmp_and_temp_set(procs, tmp_path):
    # Node's os.tmpdir() reads TMPDIR, TMP, then TEMP; the package used tempfile.gettempdir(),
    # which reads TEMP before TMP: with both set (and no TMPDIR), it made another socket's name
    # than the writer's, and its records went to the spool of a writer that was never there.
    short = tempfile.mkdtemp(prefix='lf-', dir='/tmp')  # tmp_path's is too long for a socket's path
    try:
        env = {'TMPDIR': '', 'TMP': os.path.join(short, 'tmp') + '/', 'TEMP': os.path.join(short, 'temp')}
        for name in ('tmp', 'temp'):
            os.mkdir(os.path.join(short, name))
        writer = Proc([NODE, BIN, 'writer', '--file', str(tmp_path / 'app.log'), '--stats-interval-ms', '0'], env=env)
        procs.append(writer)
        writer.wait_event('ready')
        p = Proc([PYTHON, '-c', DEFAULT_ENDPOINT], cwd=str(tmp_path), env=env)
        procs.append(p)
        done = p.wait_event('done')
        assert p.wait() == 0 and p.stderr == '', p.stderr
        assert done['endpoint'] == 'ipc://%s/tmp/logfunnel-%d/writer.sock' % (short, os.getuid()), done
        assert done['stats']['confirmed'] == 100 and done['stats']['spooled_records'] == 0, done
        writer.proc.send_signal(signal.SIGTERM)
        assert writer.wait_event('stopped')['records'] == 100
        assert writer.wait() == 0
    finally:
        for proc in procs:
            proc.kill()
        shutil.rmtree(short, ignore_errors=True)
    assert_clean(verify(str(tmp_path / 'app.log'), '--expect', '100'), 100, 1)


@pytest.mark.parametrize('wrong', ['refused', 'unresolvable'])
def test_a_tcp_endpoint_nothing_accepts_says_why_as_the_node_producer_does(run_code, tmp_path, wrong):
    """A tcp endpoint whose port nothing listens on, or whose host name does not resolve: the
    LOGFUNNEL_ERR_CONNECT report after connect_timeout gives the reason in the Node producer's
    words (its plain connect's), where it said "nothing accepted the connection" for both."""
    first, second = tcp_port_pair()
    port = first.getsockname()[1]
    first.close()
    second.close()
    host = '127.0.0.1' if wrong == 'refused' else 'no-such-host.invalid'
    opts = {'endpoint': 'tcp://%s:%d' % (host, port), 'connect_timeout': 1.0, 'close_timeout': 30.0,
            'spool_dir': str(tmp_path / 'spool')}
    # The report comes from the sender after connect_timeout; the close that follows ends once the records are in the spool.
    p = run_code(UNREACHED.replace("if sys.argv[2] == 'close':", "time.sleep(3)\nif sys.argv[2] == 'close':"), json.dumps(opts), 'close')
    p.wait_event('closed', CONNECT_TIMEOUT)
    assert p.wait(CONNECT_TIMEOUT) == 0
    # then close()'s own report of the records it put in the spool, as Node's close says it
    rest, closes = SPOOLED_AT_CLOSE.subn('', p.stderr)
    assert closes == 1, p.stderr
    assert_reported_once(rest, 'LOGFUNNEL_ERR_CONNECT')
    reason = 'connection refused (is the writer running?)' if wrong == 'refused' else 'getaddrinfo ENOTFOUND no-such-host.invalid'
    assert 'no writer answered at tcp://%s:%d within 1000 ms: %s' % (host, port, reason) in p.stderr, p.stderr
