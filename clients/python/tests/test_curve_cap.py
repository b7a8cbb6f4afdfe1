"""A CURVE writer at its connection cap (docs/operations.md, "Descriptor limits"): its ZAP
handler answers a listed key 500 and libzmq closes the connection. libzmq does not dial such a
connection again; the producer rebuilds its data socket after a backoff and gets in once a
connection frees, while it runs (as the Node producer does: test/curve-connection-cap.test.ts)."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from conftest import BIN, NODE, assert_clean, count_lines, verify

FD_LIMIT = 128
CAP = (FD_LIMIT - 64) // 2  # the writer's cap for this limit (writer/descriptor-limit.ts)
FREED = 4
N = 100

# CAP connections with an allowed key, each held open; on SIGUSR1, FREED of them closed.
FILLER = '''import json, signal, sys, time
import zmq
from zmq.utils.monitor import parse_monitor_message
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
endpoint, server, public, secret, count, free = sys.argv[1:5] + [int(sys.argv[5]), int(sys.argv[6])]
ctx = zmq.Context()
pushes, monitors = [], []
poller = zmq.Poller()
for _ in range(count):
    push = ctx.socket(zmq.PUSH)
    push.linger = 0
    push.curve_serverkey, push.curve_publickey, push.curve_secretkey = server.encode(), public.encode(), secret.encode()
    monitor = push.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
    poller.register(monitor, zmq.POLLIN)
    push.connect(endpoint)
    pushes.append(push)
    monitors.append(monitor)
seen = {zmq.EVENT_HANDSHAKE_SUCCEEDED: 0, zmq.EVENT_HANDSHAKE_FAILED_AUTH: 0}
deadline = time.monotonic() + 60
while sum(seen.values()) < count and time.monotonic() < deadline:
    for monitor, _ in poller.poll(1000):
        seen[parse_monitor_message(monitor.recv_multipart())['event']] += 1
print(json.dumps({'event': 'full', 'admitted': seen[zmq.EVENT_HANDSHAKE_SUCCEEDED],
                  'refused': seen[zmq.EVENT_HANDSHAKE_FAILED_AUTH]}), flush=True)
signal.sigwait({signal.SIGUSR1})
for push, monitor in zip(pushes[:free], monitors[:free]):
    push.disable_monitor()
    monitor.close(0)
    push.close(0)
print(json.dumps({'event': 'freed', 'closed': free}), flush=True)
signal.sigwait({signal.SIGUSR1})
'''

# N records logged, then close() on SIGUSR1 (the test looks at the file in between).
PRODUCER = '''import json, logging, signal, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
import logfunnel
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], curve_server_key=sys.argv[2], curve_key_file=sys.argv[3], seq_key='seq')
log = logging.getLogger('app'); log.setLevel(logging.INFO); log.propagate = False; log.addHandler(h)
for i in range(%d):
    log.info('record %%d', i)
print(json.dumps({'event': 'logged'}), flush=True)
signal.sigwait({signal.SIGUSR1})
h.close()
print(json.dumps({'event': 'done', 'stats': h.client.stats}), flush=True)
''' % N


def keygen(path):
    out = subprocess.run([NODE, BIN, 'keygen'], capture_output=True, check=True, timeout=30).stdout
    path.write_bytes(out)
    return json.loads(out)


def wait_until(check, timeout, describe):
    """Until ``check()`` is true, at most ``timeout`` s; the assertion says ``describe()``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError('after %.0f s: %s' % (timeout, describe()))
        time.sleep(0.05)


def test_a_producer_refused_at_the_cap_gets_in_when_a_connection_frees(writer_factory, run_code, tmp_path):
    """Refused (500) with N records while the writer is full, the producer is in once FREED
    connections close, before its close(): all N records in the file while it runs, once each.
    Before, libzmq never dialed that connection again: 0 of N in the file 30 s after the
    connections freed, LOGFUNNEL_ERR_HANDSHAKE said at 10 s. The writer counts one refusal per
    dial, and the producer one redial per refusal (stats['redials'])."""
    server = keygen(tmp_path / 'server.json')
    client = keygen(tmp_path / 'client.json')
    # NODE_DEBUG=logfunnel: the writer says each refusal as it answers it ("ZAP: no room").
    writer = writer_factory(['--curve-secret-key-file', str(tmp_path / 'server.json'), '--curve-allowed-keys=' + client['publicKey']],
                            start=False)
    writer.start(env={'NODE_DEBUG': 'logfunnel'})
    assert writer.proc is not None
    assert subprocess.run(['prlimit', '--pid', str(writer.proc.proc.pid), '--nofile=%d:%d' % (FD_LIMIT, FD_LIMIT)]).returncode == 0
    refusals = lambda: writer.proc.stderr.count('ZAP: no room')  # noqa: E731

    filler = run_code(FILLER, writer.endpoint, server['publicKey'], client['publicKey'], client['secretKey'], str(CAP), str(FREED))
    assert filler.wait_event('full', 90) == {'event': 'full', 'admitted': CAP, 'refused': 0}

    producer = run_code(PRODUCER, writer.endpoint, server['publicKey'], str(tmp_path / 'client.json'))
    producer.wait_event('logged')
    wait_until(lambda: refusals() >= 1, 30, lambda: 'the producer was not refused\nwriter stderr:\n%s' % writer.proc.stderr[-2000:])
    assert count_lines(writer.file) == 0

    filler.proc.send_signal(signal.SIGUSR1)
    filler.wait_event('freed')
    # Before, the file stayed empty until the producer's close.
    wait_until(lambda: count_lines(writer.file) == N, 30,
               lambda: '%d of %d lines in the file, the producer refused %d times\nproducer stderr:\n%s'
               % (count_lines(writer.file), N, refusals(), producer.stderr))
    assert producer.proc.poll() is None

    producer.proc.send_signal(signal.SIGUSR1)
    stats = producer.wait_event('done')['stats']
    assert producer.wait() == 0 and producer.stderr == '', producer.stderr
    assert (stats['records'], stats['confirmed'], stats['lost'], stats['spooled_records']) == (N, N, 0, 0), stats
    assert stats['redials'] == refusals() >= 1, stats

    summary = writer.stop()
    assert (summary['records'], summary['duplicates'], summary['refusedConnections']) == (N, 0, refusals()), summary
    assert_clean(verify(writer.file, '--expect', str(N)), N, 1)
