"""Pools logging through LogfunnelHandler: pool_run.py ENDPOINT KIND START_METHOD PROCESSES RECORDS [DIR]

KIND: ``with`` (``with Pool() as pool: pool.map``: terminate() at the block's end),
``join`` (pool.close(); pool.join()), ``executor`` (ProcessPoolExecutor), ``threads`` (4 threads
logging in each pool process), ``restart`` (each task logs RECORDS, signals DIR/half-<task>,
keeps logging until DIR/go exists, then logs RECORDS more). Prints {"event":"done","records":N}.
"""

import concurrent.futures
import json
import logging
import multiprocessing
import os
import sys
import threading
import time

import logfunnel

THREADS = 4
log = logging.getLogger('pool')


def init(endpoint):
    handler = logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq', close_timeout=30, receipt_timeout=0.5)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def burst(task, count, start=0):
    for i in range(start, start + count):
        log.info('record %d of task %d', i, task, extra={'task': task})
    return count


def work(task_records):
    task, records = task_records
    return burst(task, records)


def threaded(task_records):
    task, records = task_records
    threads = [threading.Thread(target=burst, args=(task * THREADS + t, records // THREADS)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return records // THREADS * THREADS


def restart(args):
    task, records, directory = args
    n = burst(task, records)
    open(os.path.join(directory, 'half-%d' % task), 'w').close()
    while not os.path.exists(os.path.join(directory, 'go')):
        n += burst(task, 10, n)
        time.sleep(0.005)
    return n + burst(task, records, n)


def main():
    endpoint, kind, method, processes, records = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    ctx = multiprocessing.get_context(method)
    tasks = [(n, records) for n in range(processes)]
    if kind == 'with':
        with ctx.Pool(processes, initializer=init, initargs=(endpoint,)) as pool:
            counts = pool.map(work, tasks, chunksize=1)
    elif kind in ('join', 'threads', 'restart'):
        pool = ctx.Pool(processes, initializer=init, initargs=(endpoint,))
        if kind == 'restart':
            counts = pool.map(restart, [(n, records, sys.argv[6]) for n in range(processes)], chunksize=1)
        else:
            counts = pool.map(threaded if kind == 'threads' else work, tasks, chunksize=1)
        pool.close()
        pool.join()
    elif kind == 'executor':
        with concurrent.futures.ProcessPoolExecutor(processes, mp_context=ctx, initializer=init, initargs=(endpoint,)) as ex:
            counts = list(ex.map(work, tasks))
    else:
        raise SystemExit('unknown kind %r' % kind)
    print(json.dumps({'event': 'done', 'records': sum(counts)}), flush=True)


if __name__ == '__main__':
    main()
