"""A program patched by gevent or eventlet that imports logfunnel and makes its handler in a
green thread other than the main one (batch_delay 1 s: what is logged next waits in memory),
then logs 100 records from the main one and says ``logged`` with SIGTERM's handler; then waits
for a signal. argv: endpoint, 'gevent' or 'eventlet'."""

import sys

endpoint, library = sys.argv[1], sys.argv[2]
if library == 'gevent':
    from gevent import monkey
    monkey.patch_all()
    import gevent
    spawn = gevent.spawn
else:
    import eventlet
    eventlet.monkey_patch()
    spawn = eventlet.spawn

import json  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

log = logging.getLogger('green')


def setup():
    import logfunnel
    log.addHandler(logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq', batch_delay=1.0))
    log.setLevel(logging.INFO)
    log.propagate = False


spawn(setup).wait() if library == 'eventlet' else spawn(setup).join()
for n in range(100):
    log.info('main', extra={'n': n})
handler = signal.getsignal(signal.SIGTERM)
print(json.dumps({'event': 'logged', 'sigterm': getattr(handler, '__qualname__', str(handler))}), flush=True)
time.sleep(60)
