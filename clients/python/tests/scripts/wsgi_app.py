"""A WSGI app logging one record per request (its id from the query string) through LogfunnelHandler."""

import logging
import os

import logfunnel

log = logging.getLogger('app')
log.addHandler(logfunnel.LogfunnelHandler(endpoint=os.environ['LOGFUNNEL_ENDPOINT'], seq_key='seq'))
log.setLevel(logging.INFO)
log.propagate = False


def app(environ, start_response):
    log.info('request', extra={'request': environ.get('QUERY_STRING', '')})
    body = b'ok\n'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
