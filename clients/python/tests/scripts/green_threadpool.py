"""A program patched by gevent or eventlet, whose 4 green threads and 4 jobs in real OS threads
(gevent's threadpool, eventlet.tpool) log 2,000 records each at once through one
LogfunnelHandler. Says ``done`` with how many of the 8 ended within 20 s. argv: endpoint,
'gevent' or 'eventlet'."""

import sys

endpoint, library = sys.argv[1], sys.argv[2]
from green_patch import green_logger, patch  # noqa: E402

patch(library)

import json  # noqa: E402
import time  # noqa: E402

log = green_logger(endpoint)
PER = 2000


def green(k):
    for n in range(PER):
        log.info('green', extra={'who': 'green %d' % k, 'n': n})
        if n % 50 == 0:
            time.sleep(0)  # patched: lets the other green threads run


def real(k):
    for n in range(PER):
        log.info('real', extra={'who': 'real %d' % k, 'n': n})


if library == 'gevent':
    import gevent
    import gevent.threadpool
    pool = gevent.threadpool.ThreadPool(4)
    jobs = [pool.spawn(real, k) for k in range(4)] + [gevent.spawn(green, k) for k in range(4)]
    gevent.joinall(jobs, timeout=20)
    ended = sum(job.ready() for job in jobs)
else:
    import eventlet.tpool
    jobs = [eventlet.spawn(eventlet.tpool.execute, real, k) for k in range(4)] + [eventlet.spawn(green, k) for k in range(4)]
    ended = 0
    with eventlet.Timeout(20, False):
        for job in jobs:
            job.wait()
            ended += 1
print(json.dumps({'event': 'done', 'ended': ended}), flush=True)
