"""What the green-thread scripts share: monkey-patching by gevent or eventlet, and the logger
they log through. Imports nothing at its top that either library patches: a script imports it
before patching."""


def patch(library):
    """Patches the standard library as gevent's or eventlet's programs do."""
    if library == 'gevent':
        from gevent import monkey
        monkey.patch_all()
    else:
        import eventlet
        eventlet.monkey_patch()


def green_logger(endpoint):
    """The logger 'green' through a LogfunnelHandler (seq_key 'seq'), imported after patch()."""
    import logging

    import logfunnel
    log = logging.getLogger('green')
    log.addHandler(logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq'))
    log.setLevel(logging.INFO)
    log.propagate = False
    return log
