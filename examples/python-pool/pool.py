"""A multiprocessing.Pool logging into one file through a logfunnel writer.

Each task runs in a process of its own (maxtasksperchild=1) and logs `records` records through
LogfunnelHandler; the process ends right after its last record, and the handler's close()
(run by multiprocessing at the child's exit) waits for the writer's receipts.

    PYTHONPATH=../../clients/python python3 pool.py --endpoint ipc:///tmp/lf/w.sock
"""

import argparse
import json
import logging
import multiprocessing
import os

import logfunnel

log = logging.getLogger('pool')


def init(endpoint):
    # One handler per process, created in the process: it owns the process's sockets.
    handler = logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq')
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def work(task):
    task_id, records = task
    for i in range(records):
        log.info('record %d of task %d', i, task_id, extra={'task': task_id})
    return os.getpid()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--endpoint', default=os.environ.get('LOGFUNNEL_ENDPOINT') or logfunnel.default_endpoint())
    parser.add_argument('--processes', type=int, default=4)
    parser.add_argument('--records', type=int, default=20_000)
    args = parser.parse_args()
    pool = multiprocessing.Pool(args.processes, initializer=init, initargs=(args.endpoint,), maxtasksperchild=1)
    pids = pool.map(work, [(n, args.records) for n in range(args.processes)], chunksize=1)
    # close() + join() lets every worker finish waiting for its receipts. A `with` block works
    # too: its terminate() sends SIGTERM, and what has no receipt yet goes to the spool.
    pool.close()
    pool.join()
    print(json.dumps({'event': 'done', 'pids': pids}), flush=True)


if __name__ == '__main__':
    main()
