"""A Flask app run by Flask's development server with werkzeug's reloader (``app.run(debug=True)``):
two records per request (``start`` and ``done``, its id from the query string) through
LogfunnelHandler. The reloader's child (``WERKZEUG_RUN_MAIN``) says ``serving`` with the
handler's ``batch_delay``. ``/stop?parent`` (or ``?group``) logs its ``start``, waits until the
writer has confirmed it, logs its ``done``, gives that one at most 10 ms to be confirmed too
(half the default batch_delay: a record logged just after a batch went is gathered 20 ms), then
sends SIGTERM to the reloader's parent (or to the process group) as a ``kill`` would,
mid-request."""

import json
import logging
import os
import signal
import time

from flask import Flask, request

import logfunnel

log = logging.getLogger('app')
handler = logfunnel.LogfunnelHandler(endpoint=os.environ['LOGFUNNEL_ENDPOINT'], seq_key='seq')
log.addHandler(handler)
log.setLevel(logging.INFO)
log.propagate = False
app = Flask(__name__)


def confirmed(within):
    """Until the writer has confirmed every record logged so far, at most ``within`` s."""
    stats = handler.client.stats
    deadline = time.monotonic() + within
    while stats['confirmed'] < stats['records'] and time.monotonic() < deadline:
        time.sleep(0.0005)


@app.route('/')
def index():
    n = request.query_string.decode()
    log.info('start', extra={'request': n})
    log.info('done', extra={'request': n})
    return 'ok\n'


@app.route('/stop')
def stop():
    how = request.query_string.decode()
    log.info('start', extra={'request': how})
    confirmed(5.0)
    log.info('done', extra={'request': how})
    confirmed(0.01)
    if how == 'parent':
        os.kill(os.getppid(), signal.SIGTERM)
    else:
        os.killpg(0, signal.SIGTERM)
    return 'stopping\n'


if __name__ == '__main__':
    if os.environ.get('WERKZEUG_RUN_MAIN') == 'true':
        print(json.dumps({'event': 'serving', 'pid': os.getpid(), 'batch_delay': handler.client.batch_delay}), flush=True)
    logging.getLogger('werkzeug').setLevel(logging.ERROR)  # no access log on stderr
    app.run(host='127.0.0.1', port=int(os.environ['PORT']), debug=True)
