"""Where a Python producer's CPU goes, thread by thread: N processes (fork) log through
``LogfunnelHandler`` into a real writer; each reads its threads' CPU from /proc/self/task before
and after its records (after the handler's flush: every receipt in), and the writer's CPU is read
from /proc over the same span. Prints records/s and microseconds of CPU per record for each
process's threads (``main`` is the logging thread; the other Python thread is the sender, then
libzmq's I/O thread) and for the writer, each thread's CPU followed
by its minor page faults per 1000 records (memory touched for the first time).

Usage: /usr/bin/python3 bench/python/threads.py [--size 1024] [--records 50000] [--producers 4]
       [--batch-delay S] [--writer-args '--fsync off']
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, Optional

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'clients', 'python'))
import logfunnel  # noqa: E402
from bench import process_cpu, start_writer  # noqa: E402  (bench/python/bench.py, beside this file)

TICK = os.sysconf('SC_CLK_TCK')


def threads_cpu() -> Dict[str, Any]:
    """{tid: (name, CPU seconds, minor page faults)} for this process's threads."""
    out = {}
    for tid in os.listdir('/proc/self/task'):
        with open('/proc/self/task/%s/stat' % tid, encoding='ascii') as f:
            stat = f.read()
        fields = stat[stat.rindex(')') + 2:].split()
        out[tid] = (stat[stat.index('(') + 1:stat.rindex(')')], (int(fields[11]) + int(fields[12])) / TICK, int(fields[7]))
    return out


def producer(endpoint: str, size: int, records: int, options: Dict[str, Any], ready: Any, go: Any, results: Any) -> None:
    log = logging.getLogger('threads')
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logfunnel.LogfunnelHandler(endpoint=endpoint, seq_key='seq', close_timeout=60, **options)
    log.addHandler(handler)
    payload = 'x' * size
    log.info('first')  # the sender thread and sockets exist before the clock starts
    handler.flush()
    before = threads_cpu()
    ready.wait()
    go.wait()
    for _ in range(records):
        log.info(payload)
    handler.flush()
    after = threads_cpu()
    me = str(os.getpid())
    results.put({('main' if tid == me else '%s %s' % (name, tid)):
                 ((cpu - before.get(tid, ('', 0.0, 0))[1]) / records * 1e6, (faults - before.get(tid, ('', 0.0, 0))[2]) * 1000 / records)
                 for tid, (name, cpu, faults) in after.items()})
    handler.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split('\n\n')[0].split()))
    parser.add_argument('--size', type=int, default=1024)
    parser.add_argument('--records', type=int, default=50_000, help='records per producer')
    parser.add_argument('--producers', type=int, default=4)
    parser.add_argument('--batch-delay', type=float, default=None, help="the handler's batch_delay, s (default: its own)")
    parser.add_argument('--high-water-mark', type=int, default=None, help="the handler's high_water_mark, bytes (default: its own)")
    parser.add_argument('--writer-args', default='')
    args = parser.parse_args()
    options = {k: v for k, v in (('batch_delay', args.batch_delay), ('high_water_mark', args.high_water_mark)) if v is not None}
    directory = tempfile.mkdtemp(prefix='lf-pythreads-')
    endpoint = 'ipc://%s/w.sock' % directory
    writer = start_writer(directory, *args.writer_args.split())
    try:
        ctx = multiprocessing.get_context('fork')
        ready, go, results = ctx.Barrier(args.producers + 1), ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=producer, args=(endpoint, args.size, args.records, options, ready, go, results)) for _ in range(args.producers)]
        for p in procs:
            p.start()
        ready.wait()  # every producer has its first record receipted
        writer0, start = process_cpu(writer.pid), time.time()
        go.set()
        per_process = [results.get(timeout=300) for _ in procs]
        end, writer1 = time.time(), process_cpu(writer.pid)
        for p in procs:
            p.join()
        total = args.records * args.producers
        print('%d x %d B: %.0f records/s; writer %.2f us/record' % (args.producers, args.size, total / (end - start), (writer1 - writer0) / total * 1e6))
        for threads in per_process:
            print('  ' + ', '.join('%s %.2f us %.0f faults' % (name, us, faults)
                                   for name, (us, faults) in sorted(threads.items(), key=lambda kv: -kv[1][0]) if us >= 0.05))
    finally:
        writer.terminate()
        writer.wait()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == '__main__':
    main()
