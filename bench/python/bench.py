"""The benchmark in Python: four ways for a pool of processes to log into one file, through the
standard library's logging, measured in one run and every file verified.

    npm run bench:python -- [--producers 4,16] [--size 100,1024] [--total 200000] [--repeat 2]
    python3 bench/python/bench.py [same options] [--json FILE]     (the runner alone, no chart)

Strategies (every producer process builds the same pino-style JSON line per record):
  lock      the seed's ProcessLock: fcntl.flock(LOCK_EX) on a lock file around each emit of a
            FileHandler (one write(2) per record, O_APPEND)
  file      a plain FileHandler per process: O_APPEND, one write(2) per record, no coordination
  queue     the logging cookbook's QueueHandler in every process + one QueueListener (in the
            harness process) writing through a FileHandler
  funnel    logfunnel.LogfunnelHandler to a real writer (node dist/cli/bin.js writer, its defaults:
            fsync after every write, receipts wait for it)
  funnel-nofsync  the same with the writer's --fsync off (like lock, file and queue, which never fsync)

Ready: each producer builds its handler and logs one record through it (flush() returns: the
file is open, the queue's feeder thread or the funnel's sender thread is up and has its first
receipt), as the Node bench's producers are ready with their sender thread up; that record is
verified with the others but not timed. Throughput: from `go` (all producers ready) until every
record is in the file (funnel: flush() has every receipt; queue: the listener has written the last
record). CPU per record: user+sys over the same window of every process involved (the producers,
all threads; the writer; the harness holding the listener) over the records timed.
Other load: cores kept busy by anything but this run (machine-wide busy time from /proc/stat,
less the run's own CPU, over the run's wall time), as in the Node bench; rerun a cell where it is
well above 0.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import logging.handlers
import multiprocessing
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'clients', 'python'))
import logfunnel  # noqa: E402
from logfunnel.handler import pino_level  # noqa: E402

BIN = os.path.join(ROOT, 'dist', 'cli', 'bin.js')
NODE = os.environ.get('LOGFUNNEL_NODE', 'node')
STRATEGIES = ['lock', 'file', 'queue', 'funnel', 'funnel-nofsync']
HOSTNAME = socket.gethostname()
ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(',', ':')).encode


class JsonFormatter(logging.Formatter):
    """The line LogfunnelHandler writes: level, time, pid, hostname, name, seq, msg."""

    def format(self, record: logging.LogRecord) -> str:
        return ENCODE({'level': pino_level(record.levelno), 'time': int(record.created * 1000), 'pid': record.process,
                       'hostname': HOSTNAME, 'name': record.name, 'seq': record.seq, 'msg': record.getMessage()})


class Seq(logging.Filter):
    """A per-process counter 0, 1, 2, ... in ``record.seq`` (what verify checks)."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def filter(self, record: logging.LogRecord) -> bool:
        record.seq = self.n
        self.n += 1
        return True


class ProcessLockFileHandler(logging.FileHandler):
    """The seed's ProcessLock: an exclusive flock on a lock file around each emit."""

    def __init__(self, filename: str, lock_path: str) -> None:
        super().__init__(filename, mode='a', encoding='utf-8')
        self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    def emit(self, record: logging.LogRecord) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            super().emit(record)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)


def producer(strategy: str, target: Any, records: int, size: int, ready: Any, go: Any, results: Any) -> None:
    log = logging.getLogger('bench')
    log.propagate = False
    log.setLevel(logging.INFO)
    if strategy.startswith('funnel'):
        handler: logging.Handler = logfunnel.LogfunnelHandler(endpoint=target, seq_key='seq', close_timeout=60)
    else:
        log.addFilter(Seq())
        if strategy == 'queue':
            handler = logging.handlers.QueueHandler(target)
        else:
            handler = ProcessLockFileHandler(target[0], target[1]) if strategy == 'lock' else logging.FileHandler(target[0], encoding='utf-8')
            handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    payload = 'x' * size
    log.info(payload)  # the first record: opens what the handler opens, starts its threads (not timed)
    handler.flush()
    ready.wait()
    go.wait()
    cpu0 = time.process_time()
    for _ in range(records):
        log.info(payload)
    handler.flush()
    if strategy == 'queue':  # every record handed to the pipe: the listener's stop() then comes after the last
        target.close()
        target.join_thread()
    done = time.time()
    cpu = time.process_time() - cpu0
    results.put({'done': done, 'pid': os.getpid(), 'cpu': cpu})
    handler.close()


def start_writer(directory: str, *flags: str) -> subprocess.Popen:
    endpoint = 'ipc://%s/w.sock' % directory
    writer = subprocess.Popen([NODE, BIN, 'writer', '--file', os.path.join(directory, 'app.log'), '--endpoint', endpoint,
                               '--stats-interval-ms', '0', *flags], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert writer.stdout is not None
    for line in writer.stdout:
        if b'"ready"' in line:
            return writer
    raise RuntimeError('the writer did not start')


def process_cpu(pid: int) -> float:
    """CPU seconds (user + sys, every thread) a running process has used so far (/proc/<pid>/stat)."""
    with open('/proc/%d/stat' % pid, encoding='ascii') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def busy_seconds() -> float:
    """Machine-wide CPU seconds spent busy so far (/proc/stat: user, nice, system, irq, softirq, steal)."""
    with open('/proc/stat', encoding='ascii') as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]) / os.sysconf('SC_CLK_TCK')


def run_once(strategy: str, producers: int, size: int, total: int) -> Dict[str, Any]:
    directory = tempfile.mkdtemp(prefix='lf-pybench-')
    file = os.path.join(directory, 'app.log')
    records = total // producers
    ctx = multiprocessing.get_context('fork')
    ready, go = ctx.Barrier(producers + 1), ctx.Event()
    results = ctx.Queue()
    writer: Optional[subprocess.Popen] = None
    listener = None
    self0, children0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, wall0 = busy_seconds(), time.time()
    if strategy.startswith('funnel'):
        writer = start_writer(directory, *(['--fsync', 'off'] if strategy == 'funnel-nofsync' else []))
        target: Any = 'ipc://%s/w.sock' % directory
    elif strategy == 'queue':
        target = ctx.Queue()
        file_handler = logging.FileHandler(file, encoding='utf-8')
        file_handler.setFormatter(JsonFormatter())
        listener = logging.handlers.QueueListener(target, file_handler)
        listener.start()
    else:
        target = (file, os.path.join(directory, 'lock'))
    procs = [ctx.Process(target=producer, args=(strategy, target, records, size, ready, go, results)) for _ in range(producers)]
    for p in procs:
        p.start()
    ready.wait()
    writer_cpu0 = process_cpu(writer.pid) if writer is not None else 0.0
    own_cpu0 = time.process_time()
    start = time.time()
    go.set()
    done = [results.get(timeout=300) for _ in procs]
    end = max(d['done'] for d in done)
    if listener is not None:
        listener.stop()  # writes every record still queued, then returns
        end = time.time()
        listener.handlers[0].close()
    window_cpu = sum(d['cpu'] for d in done) + (process_cpu(writer.pid) - writer_cpu0 if writer is not None else 0.0)
    if listener is not None:
        window_cpu += time.process_time() - own_cpu0
    for p in procs:
        p.join()
    if writer is not None:
        writer.send_signal(signal.SIGTERM)
        writer.wait()
    self1, children1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    busy1, wall1 = busy_seconds(), time.time()
    cpu = sum(getattr(b, f) - getattr(a, f) for a, b in ((self0, self1), (children0, children1)) for f in ('ru_utime', 'ru_stime'))
    load = max(0.0, busy1 - busy0 - cpu) / (wall1 - wall0)
    n = records * producers
    report = json.loads(subprocess.run([NODE, BIN, 'verify', '--json', file, '--expect', str(records + 1), '--expect-total',
                                        str(n + producers)],
                                       capture_output=True, timeout=300).stdout)
    defects = sum(report.get(k, 0) for k in ('torn', 'gaps', 'duplicates', 'reordered', 'missing', 'extra'))
    subprocess.run(['rm', '-rf', directory])
    return {'strategy': strategy, 'producers': producers, 'size': size, 'records': n, 'seconds': end - start,
            'rps': n / (end - start), 'cpu_us': window_cpu / n * 1e6, 'lines': report.get('lines'), 'defects': defects,
            'load': load, 'ok': bool(report.get('ok')) and report.get('lines') == n + producers}


def main() -> None:
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split('\n\n')[0].split()))
    parser.add_argument('--producers', default='4,16')
    parser.add_argument('--size', default='100,1024')
    parser.add_argument('--strategies', default=','.join(STRATEGIES))
    parser.add_argument('--total', type=int, default=200_000, help='records per cell, shared by the producers')
    parser.add_argument('--repeat', type=int, default=2)
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args()
    cells = [(int(p), int(s)) for p in args.producers.split(',') for s in args.size.split(',')]
    strategies = args.strategies.split(',')
    runs: List[Dict[str, Any]] = []
    for _ in range(args.repeat):  # interleaved: every strategy once per round
        for producers, size in cells:
            for strategy in strategies:
                runs.append(run_once(strategy, producers, size, args.total))
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    rows = []
    print('| producers | size | strategy | records/s (median) | runs | CPU µs/record | x lock | x queue | x file | verify | other load (cores) |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for producers, size in cells:
        med = {}
        for strategy in strategies:
            mine = [r for r in runs if r['strategy'] == strategy and r['producers'] == producers and r['size'] == size]
            rates = sorted(r['rps'] for r in mine)
            med[strategy] = rates[len(rates) // 2] if len(rates) % 2 else sum(rates[len(rates) // 2 - 1:len(rates) // 2 + 1]) / 2
            cpu = sorted(r['cpu_us'] for r in mine)[len(mine) // 2]
            rows.append({'producers': producers, 'size': size, 'strategy': strategy, 'rps': med[strategy], 'runs': [round(x) for x in rates],
                         'cpu_us': cpu, 'defects': sum(r['defects'] for r in mine), 'ok': all(r['ok'] for r in mine),
                         'load': sorted(r['load'] for r in mine)[len(mine) // 2]})
        for row in rows[-len(strategies):]:
            ratio = lambda other: '%.2f' % (row['rps'] / med[other]) if other in med else '-'  # noqa: E731
            print('| %d | %d B | %s | %s | %s | %.1f | %s | %s | %s | %s | %.2f |' % (
                producers, size, row['strategy'], format(round(row['rps']), ','), ' '.join(format(x, ',') for x in row['runs']),
                row['cpu_us'], ratio('lock'), ratio('queue'), ratio('file'), 'ok' if row['ok'] else '%d defects' % row['defects'], row['load']))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump({'runs': runs, 'rows': rows}, f, indent=1)


if __name__ == '__main__':
    main()
