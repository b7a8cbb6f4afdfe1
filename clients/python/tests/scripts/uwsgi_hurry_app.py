"""A WSGI app for uWSGI whose handler gathers records for a whole second (batch_delay 1 s), with
an after-request hook of the application's own set before logging is configured: it counts the
requests it saw in a file (``HOOK_FILE``)."""

import logging
import logging.config
import os

import uwsgi  # type: ignore[import-not-found]


def counted() -> None:
    with open(os.environ['HOOK_FILE'], 'a', encoding='utf-8') as f:
        f.write('.')


uwsgi.after_req_hook = counted
logging.config.dictConfig({
    'version': 1,
    'disable_existing_loggers': False,
    'handlers': {'funnel': {'class': 'logfunnel.LogfunnelHandler', 'seq_key': 'seq', 'batch_delay': 1.0,
                            'endpoint': os.environ['LOGFUNNEL_ENDPOINT']}},
    'root': {'handlers': ['funnel'], 'level': 'INFO'},
})
log = logging.getLogger('app')


def application(environ, start_response):
    log.info('request', extra={'request': environ.get('QUERY_STRING', '')})
    body = b'ok\n'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
