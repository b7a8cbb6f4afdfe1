"""``Client``: one producer speaking logfunnel's wire protocol (docs/protocol.md) over pyzmq."""

from __future__ import annotations

import bisect
import collections
import itertools
import json
import os
import signal
import struct
import sys
import threading
import time
import weakref
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Union

import zmq
from zmq.utils.monitor import parse_monitor_message

from . import exit as _exit
from .endpoint import default_endpoint, receipt_endpoint_for
from .errors import CloseTimeout, ConnectError, HandshakeError, LogfunnelError
from .spool import SEGMENT_MAX_AGE, SpoolWriter, default_spool_dir

PROTOCOL_VERSION = 1
HEADER = struct.Struct('>2sBBIQQ16s')  # magic, version, flags, count, seq, base, producer id
WELCOME = b'\xff' * 8                  # receipt "nothing of yours written yet"
GAP_FLAG = b'G'                        # third receipt frame: a batch of yours skipped ahead
GAP_REWIND_INTERVAL = 0.25             # as the Node producer: batches in flight are refused in turn
KiB = 1024
MiB = 1024 * KiB
ON_FULL = ('block', 'drop', 'spool')
# Signals the kernel sends to the process as a whole; the synchronous ones (a fault in this
# thread) stay deliverable to it.
_ASYNC_SIGNALS = signal.valid_signals() - {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
                                           signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS}

Batch = Tuple[int, int, bytes]  # seq, records, payload


def _report(err: BaseException) -> None:
    sys.stderr.write('logfunnel: %s\n' % (err if isinstance(err, LogfunnelError) else '%s: %s' % (type(err).__name__, err)))


def _load_curve_keys(curve_key_file: Optional[str]) -> Dict[str, str]:
    if curve_key_file is None:
        return {}
    with open(curve_key_file, encoding='utf-8') as f:
        keys = json.load(f)
    return {'public': keys['publicKey'], 'secret': keys['secretKey']}


class _Producer:
    """What a ``Client`` is made of. Its sender thread and the process's exit hooks hold this,
    never the ``Client``, so a ``Client`` dropped without close() is collected; its finalizer
    then closes the producer (see ``Client``)."""

    def __init__(self, endpoint: Optional[str], receipt_endpoint: Optional[str], max_batch_bytes: int,
                 max_frame_bytes: int, high_water_mark: int, receipt_timeout: float, close_timeout: float,
                 send_high_water_mark: int, on_full: str, spool_dir: Optional[str], connect_timeout: float,
                 curve_server_key: Optional[str], curve_secret_key: Optional[str], curve_public_key: Optional[str],
                 curve_key_file: Optional[str], on_error: Optional[Callable[[LogfunnelError], None]],
                 batch_delay: float) -> None:
        if not 1 <= max_batch_bytes <= max_frame_bytes:
            raise ValueError('max_batch_bytes must be between 1 and max_frame_bytes')
        if high_water_mark < max_frame_bytes:
            raise ValueError('high_water_mark must be at least max_frame_bytes')
        if on_full not in ON_FULL:
            raise ValueError("on_full must be 'block', 'drop' or 'spool', got %r" % (on_full,))
        self.endpoint = endpoint or default_endpoint()
        self.receipt_endpoint = receipt_endpoint or receipt_endpoint_for(self.endpoint)
        self.spool_dir = spool_dir or default_spool_dir(self.endpoint)
        if on_full == 'spool' and self.spool_dir is None:
            raise ValueError("on_full 'spool' needs spool_dir (required for tcp endpoints)")
        self.max_batch_bytes = int(max_batch_bytes)
        self.max_frame_bytes = int(max_frame_bytes)
        self.high_water_mark = int(high_water_mark)
        self.receipt_timeout = float(receipt_timeout)
        self.close_timeout = float(close_timeout)
        self.connect_timeout = float(connect_timeout)
        self.send_high_water_mark = int(send_high_water_mark)
        self.on_full = on_full
        if not 0 <= batch_delay <= 1:
            raise ValueError('batch_delay must be between 0 and 1 s')
        self.batch_delay = float(batch_delay)
        self.on_error = on_error or _report
        keys = _load_curve_keys(curve_key_file)
        secret = curve_secret_key or keys.get('secret')
        if (curve_server_key is None) != (secret is None):
            raise ValueError('CURVE needs both curve_server_key and a secret key (curve_secret_key or curve_key_file)')
        if curve_server_key is not None and not zmq.has('curve'):
            raise ValueError('this libzmq has no CURVE support')
        self._curve: Optional[Tuple[str, str, str]] = None
        if curve_server_key is not None and secret is not None:
            public = curve_public_key or keys.get('public') or zmq.curve_public(secret.encode()).decode()
            self._curve = (curve_server_key, public, secret)
        self.reset()
        _exit.register(self)

    def reset(self) -> None:
        """Fresh state for this process; after a fork the parent's thread and sockets are not ours."""
        self.pid = os.getpid()
        self._close_lock = threading.Lock()  # one close() at a time: exit hooks and a dropped Client's closer
        self._lock = threading.RLock()  # reentrant: the SIGTERM handler may run inside send()
        self._changed = threading.Condition(self._lock)
        self._queued: List[bytes] = []      # lines (newline included) not yet in a batch
        self._queued_bytes = 0
        self._held_bytes = 0                # queued + batched without a receipt
        self._unacked: Deque[Batch] = collections.deque()  # oldest first
        self._next_seq = 0
        self._receipted = -1                # highest seq the writer confirmed
        self._spooled_through = -1          # highest seq moved to the spool
        self._spool: Optional[SpoolWriter] = None
        self._thread: Optional[threading.Thread] = None
        self._closing = False
        self._closed = False
        self._idle = False                  # the sender sleeps with nothing queued: wake it for the next line
        self._error: Optional[BaseException] = None
        self._producer_id = b''
        self.stats: Dict[str, int] = {'records': 0, 'batches': 0, 'resends': 0, 'confirmed': 0, 'dropped': 0,
                                      'spooled': 0, 'spooled_records': 0, 'lost': 0, 'spool_errors': 0}

    def send(self, line: Union[str, bytes]) -> None:
        """Queues one line (str or bytes, without newline). Raises ValueError for a line with a
        newline or over max_frame_bytes, RuntimeError after close()."""
        data = (line.encode('utf-8') if type(line) is str else bytes(line)) + b'\n'
        size = len(data)
        if data.find(b'\n') != size - 1:
            raise ValueError('a line must not contain a newline')
        if size > self.max_frame_bytes:
            raise ValueError('line of %d bytes exceeds max_frame_bytes (%d)' % (size, self.max_frame_bytes))
        with self._lock:
            if self._closing:
                raise RuntimeError('logfunnel client used after close()')
            if self._thread is None:
                self._start()
            if self._held_bytes + size > self.high_water_mark and not self._make_room(size):
                return
            self._queued.append(data)
            self._queued_bytes += size
            self._held_bytes += size
            self.stats['records'] += 1
            # The sender sleeps until told: woken for the first line after it went idle (it then
            # gathers lines for batch_delay) and for a full batch, not for every line.
            wake = self._idle or self._queued_bytes - size < self.max_batch_bytes <= self._queued_bytes
            if wake:
                self._idle = False
        if wake:
            self._wake()

    def _make_room(self, size: int) -> bool:
        """on_full (lock held): False when the record is dropped."""
        if self.on_full == 'drop':
            self.stats['dropped'] += 1
            return False
        if self.on_full == 'spool' and self._spool_held():
            return True
        deadline = time.monotonic() + self.close_timeout
        while self._held_bytes + size > self.high_water_mark:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CloseTimeout('no room within %.1f s: the writer does not confirm' % self.close_timeout, self._held_records())
            self._changed.wait(left)
        return True

    def flush(self, timeout: Optional[float] = None) -> None:
        """Blocks until every line sent so far has a receipt; CloseTimeout after ``timeout`` s."""
        self._wait_confirmed(self.close_timeout if timeout is None else timeout, 'flush')

    def close(self, timeout: Optional[float] = None) -> None:
        """Sends what is queued and waits for its receipts (at most ``timeout`` s, default
        close_timeout); what is still without a receipt then goes to the spool. Closes the
        sockets. Raises CloseTimeout only for records that could not be spooled (lost)."""
        if self.pid != os.getpid() or self._closed:
            return
        with self._close_lock:
            if not self._closed:
                self._close(timeout)

    def _close(self, timeout: Optional[float]) -> None:
        try:
            self._wait_confirmed(self.close_timeout if timeout is None else timeout, 'close')
        except CloseTimeout:
            lost = self.abandon('close deadline')
            if lost:
                raise CloseTimeout('close took longer than %.1f s: %d records without a receipt could not be spooled'
                                   % (self.close_timeout if timeout is None else timeout, lost), lost)
        finally:
            with self._lock:
                self._closing = True
                self._closed = True
            if self._thread is not None:
                self._wake()
                self._thread.join()
            if self._spool is not None:
                try:
                    self._spool.seal()
                except OSError as err:
                    _report(err)
            self._report_dropped()

    def abandon(self, why: str) -> int:
        """Stops sending and moves every record held without a receipt to the spool, without
        waiting (exit paths). Returns the number of records lost (no spool, or it failed); those
        are reported on stderr."""
        with self._lock:
            if self._closing or self.pid != os.getpid():
                return 0
            self._closing = True
            self._cut_batches()
            held = self._held_records()
            lost = 0 if held == 0 or self._spool_held() else held
            if self._spool is not None and lost == 0:
                try:
                    self._spool.seal()
                except OSError as err:
                    self.stats['spool_errors'] += 1
                    _report(err)
            if lost:
                self.stats['lost'] += lost
                sys.stderr.write('logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: %s: %d records without a receipt lost '
                                 '(no spool, or it could not be written)\n' % (why, lost))
            self._changed.notify_all()
        self._wake()
        return lost

    def close_or_report(self) -> None:
        """close(), writing a CloseTimeout to stderr instead of raising it (for exit hooks)."""
        try:
            self.close()
        except CloseTimeout:
            pass  # abandon() reported it

    def release(self) -> None:
        """Its Client was collected without close(): close in a thread of its own (the collector
        may run inside any call, even a signal handler, so it must not wait here). The exit
        hooks still find this producer until that close ends."""
        if self.pid != os.getpid() or self._closed or self._thread is None:
            return
        try:
            threading.Thread(target=self.close_or_report, name='logfunnel-close', daemon=True).start()
        except RuntimeError:  # interpreter shutdown: no new threads; keep what is held, without waiting
            self.abandon('dropped at exit')

    def _report_dropped(self) -> None:
        if self.stats['dropped']:
            sys.stderr.write("logfunnel: on_full 'drop': %d records dropped past high_water_mark\n" % self.stats['dropped'])

    def _held_records(self) -> int:
        return len(self._queued) + sum(count for _seq, count, _payload in self._unacked)

    def _spool_held(self) -> bool:
        """Moves every batch held without a receipt to the spool, oldest first (lock held), so
        the spool alone holds the sequence from the first unreceipted batch on. False when there
        is no spool or it cannot be written (nothing is removed then)."""
        if self.spool_dir is None:
            return False
        self._batch_queued()
        if not self._unacked:
            return True
        if self._spool is None:
            self._spool = SpoolWriter(self.spool_dir, self._producer_id.hex(), self.endpoint)
        base = self._unacked[0][0]
        try:
            while self._unacked:
                seq, count, payload = self._unacked[0]
                self._spool.append(HEADER.pack(b'LF', PROTOCOL_VERSION, 0, count, seq, base, self._producer_id), payload)
                self._unacked.popleft()
                self._held_bytes -= len(payload)
                self._spooled_through = seq
                self.stats['spooled'] += 1
                self.stats['spooled_records'] += count
        except (OSError, LogfunnelError) as err:
            self.stats['spool_errors'] += 1
            _report(err)
            return False
        finally:
            self._changed.notify_all()
        return True

    def _wait_confirmed(self, timeout: float, what: str) -> None:
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
                self._changed.wait(min(left, SEGMENT_MAX_AGE))
                self._seal_old_segment()

    def _start(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._producer_id = os.urandom(16)
        _exit.install_finalizer()
        _exit.install_sigterm()
        self._thread = threading.Thread(target=self._run, name='logfunnel-sender', daemon=True)
        self._thread.start()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b'!')
        except (BlockingIOError, OSError, AttributeError):
            pass  # the pipe is full (the thread is due to wake), or already closed

    def _seal_old_segment(self) -> None:
        spool = self._spool
        if spool is not None and spool.open and time.monotonic() - spool.opened_at >= SEGMENT_MAX_AGE:
            try:
                spool.seal()
            except OSError as err:
                self.stats['spool_errors'] += 1
                _report(err)

    def _sockets(self, ctx: zmq.Context) -> Tuple[zmq.Socket, zmq.Socket, zmq.Socket]:
        push = ctx.socket(zmq.PUSH)
        sub = ctx.socket(zmq.SUB)
        for sock in (push, sub):
            sock.setsockopt(zmq.LINGER, 0)
            if self._curve is not None:
                sock.curve_serverkey = self._curve[0].encode()
                sock.curve_publickey = self._curve[1].encode()
                sock.curve_secretkey = self._curve[2].encode()
        push.setsockopt(zmq.SNDHWM, self.send_high_water_mark)
        monitor = push.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
                                          | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                          | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        push.connect(self.endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, self._producer_id)
        sub.connect(self.receipt_endpoint)
        return push, sub, monitor

    def _run(self) -> None:
        # A process-directed signal (SIGTERM from Pool.terminate() or gunicorn) goes to any thread
        # that does not block it; in this one, Python would only set a flag, and a main thread
        # asleep in a blocking call would not run its handler until that call returns.
        signal.pthread_sigmask(signal.SIG_BLOCK, _ASYNC_SIGNALS)
        ctx = zmq.Context()
        push, sub, monitor = self._sockets(ctx)
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        sent_through = -1   # highest seq sent since the last rewind
        started = progress_at = time.monotonic()
        last_rewind = cut_at = 0.0
        connected = handshaken = reported = False
        failure = ''
        try:
            while True:
                with self._lock:
                    if self._closing:
                        return
                    now = time.monotonic()
                    if self._queued and (self._queued_bytes >= self.max_batch_bytes or now - cut_at >= self.batch_delay):
                        cut_at = now
                        self._cut_batches()
                    gathering = bool(self._queued)
                    self._idle = not gathering
                    self._seal_old_segment()
                    batches = [b for b in self._unacked if b[0] > sent_through]
                    base = self._unacked[0][0] if self._unacked else self._next_seq
                    waiting = bool(self._unacked)
                blocked = False
                for seq, count, payload in batches:
                    header = HEADER.pack(b'LF', PROTOCOL_VERSION, 0, count, seq, base, self._producer_id)
                    try:
                        push.send_multipart([header, payload], flags=zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        blocked = True
                        break  # libzmq's queue is full (or no writer yet): retried on the next turn
                    sent_through = seq
                    self.stats['batches'] += 1
                now = time.monotonic()
                if not waiting:
                    progress_at = now
                elif now - progress_at >= self.receipt_timeout:
                    sent_through, progress_at = -1, now
                    self.stats['resends'] += 1
                if not handshaken and not reported and now - started >= self.connect_timeout:
                    reported = True
                    self._fail(HandshakeError(self.endpoint, self.connect_timeout, failure or 'no ZMTP handshake completed')
                               if connected else ConnectError(self.endpoint, self.connect_timeout, 'nothing accepted the connection'))
                wait = 0.01 if blocked else max(0.0, self.receipt_timeout - (now - progress_at))
                if gathering:
                    wait = min(wait, max(0.0, cut_at + self.batch_delay - now))
                if self._spool is not None and self._spool.open:
                    wait = min(wait, SEGMENT_MAX_AGE)
                if not handshaken and not reported:
                    wait = min(wait, max(0.0, self.connect_timeout - (now - started)))
                events = dict(poller.poll(int(wait * 1000) + 1))
                if self._wake_r in events:
                    os.read(self._wake_r, 4096)
                while monitor in events:
                    try:
                        event = parse_monitor_message(monitor.recv_multipart(flags=zmq.NOBLOCK))
                    except zmq.Again:
                        break
                    if event['event'] == zmq.EVENT_CONNECTED:
                        connected = True
                    elif event['event'] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                        handshaken = True
                    else:
                        failure = 'handshake failed (event %d, %s)' % (event['event'], 'CURVE keys?' if self._curve else 'not a writer?')
                while sub in events:
                    try:
                        frames = sub.recv_multipart(flags=zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    acked, gap = self._receipt(frames)
                    if acked:
                        progress_at = time.monotonic()
                    if gap and time.monotonic() - last_rewind >= GAP_REWIND_INTERVAL:
                        sent_through, last_rewind = -1, time.monotonic()
                        self.stats['resends'] += 1
        except Exception as err:  # noqa: BLE001 - handed to the waiting caller
            with self._lock:
                self._error = err
                self._changed.notify_all()
        finally:
            push.disable_monitor()
            for sock in (monitor, push, sub):
                sock.close(0)
            ctx.term()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _fail(self, err: LogfunnelError) -> None:
        try:
            self.on_error(err)
        except Exception:  # noqa: BLE001 - a reporting hook must not stop the sender
            _report(err)

    def _cut_batches(self) -> None:
        """Moves queued lines into batches (lock held); while the spool holds an unreceipted
        batch, new batches follow it there, so the writer sees the sequence in order."""
        self._batch_queued()
        if self._spooled_through > self._receipted and self._unacked and not self._closing:
            self._spool_held()

    def _batch_queued(self) -> None:
        """Moves queued lines into batches of at most max_batch_bytes (lock held), each one join;
        the cuts come from the running sum of the lines' lengths (bisect), so no Python code runs
        per line and no byte is scanned; a line longer than max_batch_bytes is a batch of its own."""
        lines = self._queued
        if not lines:
            return
        total, limit = self._queued_bytes, self.max_batch_bytes
        self._queued = []
        self._queued_bytes = 0
        if total <= limit:
            self._add_batch(len(lines), b''.join(lines))
            return
        ends = list(itertools.accumulate(map(len, lines)))
        start, done = 0, 0
        while start < len(lines):
            stop = max(start + 1, bisect.bisect_right(ends, done + limit, start))
            self._add_batch(stop - start, b''.join(lines[start:stop]))
            done, start = ends[stop - 1], stop

    def _add_batch(self, count: int, payload: bytes) -> None:
        self._unacked.append((self._next_seq, count, payload))
        self._next_seq += 1

    def _receipt(self, frames: List[bytes]) -> Tuple[int, bool]:
        """Applies one receipt; returns (batches confirmed, gap flag)."""
        if len(frames) < 2 or frames[0] != self._producer_id or len(frames[1]) != 8:
            return 0, False
        gap = len(frames) > 2 and frames[2] == GAP_FLAG
        if frames[1] == WELCOME:
            return 0, gap
        (written,) = struct.unpack('>Q', frames[1])
        acked = 0
        with self._lock:
            if written > self._receipted:
                self._receipted = written
                acked = 1
            while self._unacked and self._unacked[0][0] <= written:
                _seq, count, payload = self._unacked.popleft()
                self._held_bytes -= len(payload)
                self.stats['confirmed'] += count
                acked += 1
            if acked:
                self._changed.notify_all()
        return acked, gap


class Client:
    """One producer: a PUSH socket for batches and a SUB socket for its receipts.

    ``send(line)`` queues one line (no newline inside; one is added) and returns at once; a
    sender thread batches what was queued, up to ``max_batch_bytes``, and sends it. Past
    ``high_water_mark`` bytes held without a receipt, ``on_full`` applies: ``'block'`` waits
    for receipts (at most ``close_timeout`` s, then CloseTimeout), ``'drop'`` drops the record
    (counted in ``stats['dropped']``), ``'spool'`` moves what is held to the spool. After
    ``os.fork()`` the child starts afresh as a producer of its own (new id, nothing inherited).

    Records without a receipt at ``close()``'s deadline, at interpreter exit, at
    multiprocessing's finalizers and on SIGTERM go to the spool (``spool_dir``, by default
    ``<ipc path>.spool`` as for Node's producers), from which the writer ingests them; what
    cannot be kept is reported on stderr with its count.

    A Client dropped without ``close()`` is closed as if ``close()`` had been called (in a
    thread of its own, so nothing waits where it was dropped): its records are confirmed or
    spooled, then its thread and sockets end.
    """

    send: Callable[[Union[str, bytes]], None]
    flush: Callable[..., None]
    close: Callable[..., None]
    abandon: Callable[[str], int]
    close_or_report: Callable[[], None]

    def __init__(self, endpoint: Optional[str] = None, receipt_endpoint: Optional[str] = None,
                 max_batch_bytes: int = 256 * KiB, max_frame_bytes: int = 1 * MiB, high_water_mark: int = 16 * MiB,
                 receipt_timeout: float = 5.0, close_timeout: float = 10.0, send_high_water_mark: int = 1000,
                 on_full: str = 'block', spool_dir: Optional[str] = None, connect_timeout: float = 10.0,
                 curve_server_key: Optional[str] = None, curve_secret_key: Optional[str] = None,
                 curve_public_key: Optional[str] = None, curve_key_file: Optional[str] = None,
                 on_error: Optional[Callable[[LogfunnelError], None]] = None, batch_delay: float = 0.002) -> None:
        producer = _Producer(endpoint=endpoint, receipt_endpoint=receipt_endpoint, max_batch_bytes=max_batch_bytes,
                             max_frame_bytes=max_frame_bytes, high_water_mark=high_water_mark,
                             receipt_timeout=receipt_timeout, close_timeout=close_timeout,
                             send_high_water_mark=send_high_water_mark, on_full=on_full, spool_dir=spool_dir,
                             connect_timeout=connect_timeout, curve_server_key=curve_server_key,
                             curve_secret_key=curve_secret_key, curve_public_key=curve_public_key,
                             curve_key_file=curve_key_file, on_error=on_error, batch_delay=batch_delay)
        self._producer = producer
        # The producer's own bound methods: no extra call per record, and no reference back here.
        self.send = producer.send
        self.flush = producer.flush
        self.close = producer.close
        self.abandon = producer.abandon
        self.close_or_report = producer.close_or_report
        weakref.finalize(self, producer.release).atexit = False

    @property
    def stats(self) -> Dict[str, int]:
        return self._producer.stats

    @property
    def pid(self) -> int:
        return self._producer.pid

    def __getattr__(self, name: str) -> Any:
        # Options and state (endpoint, spool_dir, on_full, ...) are the producer's.
        if name == '_producer':
            raise AttributeError(name)
        return getattr(self._producer, name)
