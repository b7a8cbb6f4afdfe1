"""gevent.monkey.patch_all(), then 4 greenlets and 4 jobs of gevent's threadpool (real OS threads)
logging 2,000 records each at once through one LogfunnelHandler. Says ``done`` with how many of
the 8 ended within 20 s. argv: endpoint."""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import gevent.threadpool  # noqa: E402

import logfunnel  # noqa: E402

log = logging.getLogger('green')
log.addHandler(logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq'))
log.setLevel(logging.INFO)
log.propagate = False
PER = 2000


def green(k):
    for n in range(PER):
        log.info('green', extra={'who': 'green %d' % k, 'n': n})
        if n % 50 == 0:
            gevent.sleep(0)


def real(k):
    for n in range(PER):
        log.info('real', extra={'who': 'real %d' % k, 'n': n})


pool = gevent.threadpool.ThreadPool(4)
jobs = [pool.spawn(real, k) for k in range(4)] + [gevent.spawn(green, k) for k in range(4)]
gevent.joinall(jobs, timeout=20)
print(json.dumps({'event': 'done', 'ended': sum(job.ready() for job in jobs)}), flush=True)
