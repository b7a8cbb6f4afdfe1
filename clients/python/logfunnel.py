"""logfunnel client for Python: push log lines to a logfunnel writer over ZeroMQ, with receipts.

Standard library + pyzmq only. ``Client`` speaks the full wire protocol of logfunnel (README,
"Wire protocol (version 1)"): lines are coalesced into batches with a 40-byte header, the writer
confirms what is in the file with receipts, and the client keeps every batch without a receipt
and resends from the first of them (go-back-N) when the writer reports a gap or receipts stall.
``close()`` waits for the last receipt, with a deadline. ``LogfunnelHandler`` is a
``logging.Handler`` that writes one pino-compatible JSON object per record through a ``Client``.

    import logging, logfunnel
    logging.getLogger().addHandler(logfunnel.LogfunnelHandler(endpoint='ipc:///tmp/logfunnel-1000/writer.sock'))
"""

import atexit
import collections
import datetime
import json
import logging
import multiprocessing.util
import os
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback

import zmq

__all__ = ['Client', 'LogfunnelHandler', 'CloseTimeout', 'default_endpoint', 'receipt_endpoint_for', 'PINO_LEVELS']

PROTOCOL_VERSION = 1
HEADER = struct.Struct('>2sBBIQQ16s')  # magic, version, flags, count, seq, base, producer id
WELCOME = b'\xff' * 8                  # receipt "nothing of yours written yet"
GAP_FLAG = b'G'                        # third receipt frame: a batch of yours skipped ahead
GAP_REWIND_INTERVAL = 0.25             # as the Node producer: batches in flight are refused in turn
KiB = 1024
MiB = 1024 * KiB

# Python level -> pino level number (pino: trace 10, debug 20, info 30, warn 40, error 50, fatal 60).
PINO_LEVELS = ((logging.CRITICAL, 60), (logging.ERROR, 50), (logging.WARNING, 40), (logging.INFO, 30), (logging.DEBUG, 20))


class CloseTimeout(Exception):
    """close() or flush() passed its deadline; ``unconfirmed`` records have no receipt."""

    code = 'LOGFUNNEL_ERR_CLOSE_TIMEOUT'

    def __init__(self, message, unconfirmed):
        super().__init__(message)
        self.unconfirmed = unconfirmed


def default_endpoint():
    """The writer's default endpoint: ipc://<tmpdir>/logfunnel-<uid>/writer.sock (as Node's os.tmpdir())."""
    tmp = os.environ.get('TMPDIR') or tempfile.gettempdir()
    return 'ipc://%s/logfunnel-%d/writer.sock' % (tmp.rstrip('/') or '/tmp', os.getuid())


def receipt_endpoint_for(endpoint):
    """The receipt endpoint the writer derives: <ipc path>.receipts, or the tcp port + 1."""
    if endpoint.startswith('ipc://'):
        return endpoint + '.receipts'
    if endpoint.startswith('tcp://'):
        host, _, port = endpoint[len('tcp://'):].rpartition(':')
        return 'tcp://%s:%d' % (host, int(port) + 1)
    raise ValueError('endpoint must be ipc:// or tcp://, got %r' % (endpoint,))


class Client:
    """One producer: a PUSH socket for batches and a SUB socket for its receipts.

    ``send(line)`` queues one line (no newline inside; one is added) and returns at once; a
    sender thread batches what was queued, up to ``max_batch_bytes``, and sends it. Past
    ``high_water_mark`` bytes held without a receipt, ``send`` blocks until receipts free room
    (at most ``close_timeout`` seconds, then raises CloseTimeout). After ``os.fork()`` the child
    starts afresh as a producer of its own (new id, nothing inherited).

    Every record sent reaches the file once, in order, while the writer is (or comes back) up
    before ``close()``'s deadline: the writer skips batches it already wrote.
    """

    def __init__(self, endpoint=None, receipt_endpoint=None, max_batch_bytes=256 * KiB, max_frame_bytes=1 * MiB,
                 high_water_mark=16 * MiB, receipt_timeout=5.0, close_timeout=10.0, send_high_water_mark=1000):
        if not 1 <= max_batch_bytes <= max_frame_bytes:
            raise ValueError('max_batch_bytes must be between 1 and max_frame_bytes')
        if high_water_mark < max_frame_bytes:
            raise ValueError('high_water_mark must be at least max_frame_bytes')
        self.endpoint = endpoint or default_endpoint()
        self.receipt_endpoint = receipt_endpoint or receipt_endpoint_for(self.endpoint)
        self.max_batch_bytes = max_batch_bytes
        self.max_frame_bytes = max_frame_bytes
        self.high_water_mark = high_water_mark
        self.receipt_timeout = receipt_timeout
        self.close_timeout = close_timeout
        self.send_high_water_mark = send_high_water_mark
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.close_or_report)

    def _reset(self):
        """Fresh state for this process; after a fork the parent's thread and sockets are not ours."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queued = collections.deque()  # lines (bytes, newline included) not yet in a batch
        self._held_bytes = 0                 # queued + batched without a receipt
        self._unacked = collections.deque()  # (seq, count, payload), oldest first
        self._next_seq = 0
        self._thread = None
        self._closing = False
        self._closed = False
        self._error = None
        self.stats = {'records': 0, 'batches': 0, 'resends': 0, 'confirmed': 0}

    def send(self, line):
        """Queues one line (str or bytes, without newline). Raises ValueError for a line with a
        newline or over max_frame_bytes, RuntimeError after close()."""
        data = line.encode('utf-8') if isinstance(line, str) else bytes(line)
        if b'\n' in data:
            raise ValueError('a line must not contain a newline')
        data += b'\n'
        if len(data) > self.max_frame_bytes:
            raise ValueError('line of %d bytes exceeds max_frame_bytes (%d)' % (len(data), self.max_frame_bytes))
        if self._pid != os.getpid():
            self._reset()
        with self._lock:
            if self._closing:
                raise RuntimeError('logfunnel client used after close()')
            if self._thread is None:
                self._start()
            deadline = time.monotonic() + self.close_timeout
            while self._held_bytes + len(data) > self.high_water_mark:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CloseTimeout('no room within %.1f s: the writer does not confirm' % self.close_timeout, self._held_records())
                self._changed.wait(left)
            was_empty = not self._queued
            self._queued.append(data)
            self._held_bytes += len(data)
            self.stats['records'] += 1
        if was_empty:
            self._wake()

    def flush(self, timeout=None):
        """Blocks until every line sent so far has a receipt; CloseTimeout after ``timeout`` s."""
        self._wait_confirmed(self.close_timeout if timeout is None else timeout, 'flush')

    def close(self, timeout=None):
        """Sends what is queued, waits for its receipts (at most ``timeout`` s, default
        close_timeout), then closes the sockets. Raises CloseTimeout with the number of records
        left without a receipt (they are lost: this client has no spool)."""
        if self._pid != os.getpid() or self._closed:
            return
        try:
            self._wait_confirmed(self.close_timeout if timeout is None else timeout, 'close')
        finally:
            with self._lock:
                self._closing = True
                self._closed = True
            if self._thread is not None:
                self._wake()
                self._thread.join()

    def close_or_report(self):
        """close(), writing a CloseTimeout to stderr instead of raising it (for exit hooks)."""
        try:
            self.close()
        except CloseTimeout as err:
            sys.stderr.write('logfunnel: %s: %s\n' % (err.code, err))

    def _held_records(self):
        return len(self._queued) + sum(count for _seq, count, _payload in self._unacked)

    def _wait_confirmed(self, timeout, what):
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        with self._lock:
            self._wake()
            while self._queued or self._unacked:
                if self._error is not None:
                    raise self._error
                left = deadline - time.monotonic()
                if left <= 0:
                    held = self._held_records()
                    raise CloseTimeout('%s took longer than %.1f s: %d records without a receipt' % (what, timeout, held), held)
                self._changed.wait(left)

    def _start(self):
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._producer_id = os.urandom(16)
        # multiprocessing children end in os._exit(): atexit does not run there, its finalizers
        # do, and a child clears the finalizers it inherited, so register in the process that sends.
        multiprocessing.util.Finalize(self, self.close_or_report, exitpriority=100)
        self._thread = threading.Thread(target=self._run, name='logfunnel-sender', daemon=True)
        self._thread.start()

    def _wake(self):
        try:
            os.write(self._wake_w, b'!')
        except BlockingIOError:
            pass  # the pipe is full: the thread is already due to wake

    def _run(self):
        ctx = zmq.Context()
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, self.send_high_water_mark)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(self.endpoint)
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, self._producer_id)
        sub.connect(self.receipt_endpoint)
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        send_from = 0       # index in _unacked of the first batch not sent since the last rewind
        progress_at = time.monotonic()
        last_rewind = 0.0
        try:
            while True:
                with self._lock:
                    if self._closing:
                        return
                    self._cut_batches()
                    batches = list(self._unacked)
                base = batches[0][0] if batches else self._next_seq
                while send_from < len(batches):
                    seq, count, payload = batches[send_from]
                    header = HEADER.pack(b'LF', PROTOCOL_VERSION, 0, count, seq, base, self._producer_id)
                    try:
                        push.send_multipart([header, payload], flags=zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break  # libzmq's queue is full (or no writer yet): retried on the next turn
                    send_from += 1
                    self.stats['batches'] += 1
                now = time.monotonic()
                if not batches:
                    progress_at = now
                elif now - progress_at >= self.receipt_timeout:
                    send_from, progress_at = 0, now
                    self.stats['resends'] += 1
                # A short wait while sends are blocked by libzmq; else until a receipt, new lines or the timeout.
                wait = 0.01 if send_from < len(batches) else max(0.0, self.receipt_timeout - (now - progress_at))
                events = dict(poller.poll(int(wait * 1000) + 1))
                if self._wake_r in events:
                    os.read(self._wake_r, 4096)
                while sub in events:
                    try:
                        frames = sub.recv_multipart(flags=zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    acked, gap = self._receipt(frames)
                    if acked > 0:
                        send_from = max(0, send_from - acked)
                        progress_at = time.monotonic()
                    if gap and time.monotonic() - last_rewind >= GAP_REWIND_INTERVAL:
                        send_from, last_rewind = 0, time.monotonic()
                        self.stats['resends'] += 1
        except Exception as err:  # noqa: BLE001 - handed to the waiting caller
            with self._lock:
                self._error = err
                self._changed.notify_all()
        finally:
            push.close(0)
            sub.close(0)
            ctx.term()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _cut_batches(self):
        """Moves queued lines into batches of at most max_batch_bytes (lock held)."""
        while self._queued:
            lines, size = [], 0
            while self._queued and (not lines or size + len(self._queued[0]) <= self.max_batch_bytes):
                line = self._queued.popleft()
                lines.append(line)
                size += len(line)
            self._unacked.append((self._next_seq, len(lines), b''.join(lines)))
            self._next_seq += 1

    def _receipt(self, frames):
        """Applies one receipt; returns (batches confirmed, gap flag)."""
        if len(frames) < 2 or frames[0] != self._producer_id or len(frames[1]) != 8:
            return 0, False
        gap = len(frames) > 2 and frames[2] == GAP_FLAG
        if frames[1] == WELCOME:
            return 0, gap
        (written,) = struct.unpack('>Q', frames[1])
        acked = 0
        with self._lock:
            while self._unacked and self._unacked[0][0] <= written:
                _seq, count, payload = self._unacked.popleft()
                self._held_bytes -= len(payload)
                self.stats['confirmed'] += count
                acked += 1
            if acked:
                self._changed.notify_all()
        return acked, gap


def pino_level(levelno):
    """Python's level number as pino's: DEBUG 20, INFO 30, WARNING 40, ERROR 50, CRITICAL 60; below DEBUG 10 (trace)."""
    for python_level, pino in PINO_LEVELS:
        if levelno >= python_level:
            return pino
    return 10


# LogRecord attributes that are not user fields (what logging itself sets).
_RECORD_ATTRS = frozenset(vars(logging.LogRecord('', 0, '', 0, '', (), None))) | {'message', 'asctime', 'taskName'}


class LogfunnelHandler(logging.Handler):
    """A logging.Handler writing one JSON object per record, with pino's fields: ``level``
    (pino's number), ``time`` (ms since the epoch), ``pid``, ``hostname``, ``name`` (the logger),
    ``msg``, then the ``extra=`` fields, and ``err`` ({type, message, stack}) with exc_info.

    ``seq_key='seq'`` adds a per-process counter 0, 1, 2, ... so that ``logfunnel verify`` can
    prove nothing was lost or reordered. Client options (endpoint, close_timeout, ...) pass
    through; ``close()`` waits for the receipts.
    """

    def __init__(self, endpoint=None, level=logging.NOTSET, seq_key=None, client=None, **client_options):
        super().__init__(level)
        self.client = client or Client(endpoint, **client_options)
        self.seq_key = seq_key
        self.hostname = socket.gethostname()
        self._seq_pid = os.getpid()
        self._seq = 0

    def format_record(self, record):
        """The JSON line for ``record`` (without newline)."""
        obj = {
            'level': pino_level(record.levelno),
            'time': int(record.created * 1000),
            'pid': record.process,
            'hostname': self.hostname,
            'name': record.name,
        }
        if self.seq_key is not None:
            if self._seq_pid != os.getpid():  # a forked child counts from 0
                self._seq_pid, self._seq = os.getpid(), 0
            obj[self.seq_key] = self._seq
            self._seq += 1
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in obj:
                obj[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            obj['err'] = {'type': record.exc_info[0].__name__, 'message': str(record.exc_info[1]),
                          'stack': ''.join(traceback.format_exception(*record.exc_info))}
        obj['msg'] = record.getMessage()
        return json.dumps(obj, default=_fallback, ensure_ascii=False, separators=(',', ':'))

    def emit(self, record):
        try:
            self.client.send(self.format_record(record))
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise into the caller
            self.handleError(record)

    def flush(self):
        try:
            self.client.flush()
        except CloseTimeout as err:
            sys.stderr.write('logfunnel: %s: %s\n' % (err.code, err))

    def close(self):
        try:
            self.client.close_or_report()
        finally:
            super().close()


def _fallback(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return repr(value)
