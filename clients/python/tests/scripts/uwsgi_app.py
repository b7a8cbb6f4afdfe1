"""A WSGI app for uWSGI: LogfunnelHandler configured at import by dictConfig, as most apps do (in
the master, unless --lazy-apps), with a record logged there; each request logs one record (its
id from the query string)."""

import logging
import logging.config
import os

logging.config.dictConfig({
    'version': 1,
    'disable_existing_loggers': False,
    'handlers': {'funnel': {'class': 'logfunnel.LogfunnelHandler', 'seq_key': 'seq',
                            'endpoint': os.environ['LOGFUNNEL_ENDPOINT']}},
    'root': {'handlers': ['funnel'], 'level': 'INFO'},
})
log = logging.getLogger('app')
log.info('app loaded')


def application(environ, start_response):
    log.info('request', extra={'request': environ.get('QUERY_STRING', '')})
    body = b'ok\n'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
