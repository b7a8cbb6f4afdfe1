"""What a ``Client`` is made of: the producer state and what a log call does (its sender thread
is in ``_sender``, the spool hand-over in ``_spooling``, flush and close in ``_closing``)."""

from __future__ import annotations

import collections
import os
import re
import time
from time import monotonic as _monotonic
from typing import Callable, Deque, Dict, List, Optional, Set, Union

import zmq

from . import _forks, _native
from . import exit as _exit
from ._closing import Closer
from ._sender import JOIN_SLICE, Batch, SenderThread
from ._spooling import SpoolKeeper
from ._waits import wait_holding
from .endpoint import default_endpoint, receipt_endpoint_for
from .errors import Closed, LogfunnelError, NoThreads, RecordTooLarge, SenderFailed, report
from .spool import SpoolWriter, default_spool_dir
from .wire import Curve, HandshakeWatch, cut_batches, load_curve_keys

ON_FULL = ('block', 'drop', 'spool')

# How long lines gather into a batch by default (s); 0 in a process werkzeug's reloader may SIGKILL.
BATCH_DELAY = 0.02


def default_batch_delay() -> float:
    """``batch_delay``'s default: BATCH_DELAY, or 0 in the child of werkzeug's reloader (Flask's
    development server with ``--reload`` or ``debug=True``: it runs the app with
    ``WERKZEUG_RUN_MAIN=true``). Its parent SIGKILLs that child at once when the parent gets
    SIGTERM (``subprocess.call()`` kills its child as the parent's ``sys.exit(0)`` unwinds it), and
    0.25 s after Ctrl-C: no hook of the child runs first, so what it had gathered and not yet sent
    was lost (24 of about 2,400 records, 4 clients, SIGTERM to the parent). With 0 each line goes
    to the sender thread as it is logged, and lines gather only while a send runs."""
    return 0.0 if os.environ.get('WERKZEUG_RUN_MAIN') == 'true' else BATCH_DELAY


# A sender that could not start (no free descriptor, no thread) is tried again this long after (s).
START_RETRY = 1.0


_SURROGATE = re.compile('[\ud800-\udfff]')


def _json_escape(match: 're.Match[str]') -> str:
    return '\\u%04x' % ord(match.group())


class _Producer(SenderThread, SpoolKeeper, Closer):
    """What a ``Client`` is made of. Its sender thread and the process's exit hooks hold this,
    never the ``Client``, so a ``Client`` dropped without close() is collected; its finalizer
    then closes the producer (see ``Client``)."""

    def __init__(self, endpoint: Optional[str], receipt_endpoint: Optional[str], max_batch_bytes: int,
                 max_frame_bytes: int, high_water_mark: int, receipt_timeout: float, close_timeout: float,
                 send_high_water_mark: int, on_full: str, spool_dir: Optional[str], connect_timeout: float,
                 curve_server_key: Optional[str], curve_secret_key: Optional[str], curve_public_key: Optional[str],
                 curve_key_file: Optional[str], on_error: Optional[Callable[[LogfunnelError], None]],
                 batch_delay: Optional[float], linger: float, block_timeout: float, spool_after: float) -> None:
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
        if batch_delay is None:
            batch_delay = default_batch_delay()
        if not 0 <= batch_delay <= 1:
            raise ValueError('batch_delay must be between 0 and 1 s')
        self.batch_delay = float(batch_delay)
        if not 0 <= linger <= 600:
            raise ValueError('linger must be between 0 and 600 s')
        self.linger = float(linger)
        if not 0 <= block_timeout <= 600:
            raise ValueError('block_timeout must be between 0 and 600 s')
        self.block_timeout = float(block_timeout)
        if not 0 <= spool_after <= 600:
            raise ValueError('spool_after must be between 0 and 600 s')
        self.spool_after = float(spool_after)
        self.on_error = on_error or report
        keys = load_curve_keys(curve_key_file)
        secret = curve_secret_key or keys.get('secret')
        if (curve_server_key is None) != (secret is None):
            raise ValueError('CURVE needs both curve_server_key and a secret key (curve_secret_key or curve_key_file)')
        if curve_server_key is not None and not zmq.has('curve'):
            raise ValueError('this libzmq has no CURVE support')
        self._curve: Optional[Curve] = None
        if curve_server_key is not None and secret is not None:
            public = curve_public_key or keys.get('public') or zmq.curve_public(secret.encode()).decode()
            self._curve = (curve_server_key, public, secret)
        self.reset()
        _exit.register(self)

    def reset(self) -> None:
        """Fresh state for this process; after a fork the parent's thread and sockets are not ours
        (the parent's wake-up pipe, connections to the writer and open spool segment are closed
        here: this process makes its own as it sends)."""
        self._close_inherited_wake_pipe()
        self._close_inherited_connections()
        self._close_inherited_segment()
        self.pid = os.getpid()
        # Real OS locks, whatever gevent or eventlet patched (_native): the sender thread shares them.
        self._close_lock = _native.Lock()  # one close() at a time: exit hooks and a dropped Client's closer
        self._lock = _native.RLock()  # reentrant: a fatal signal's handler may run inside send()
        self._changed = _native.Condition(self._lock)
        self._queued: List[bytes] = []      # lines (newline included) not yet in a batch
        self._queued_bytes = 0
        self._held_bytes = 0                # queued + batched without a receipt
        self._unacked: Deque[Batch] = collections.deque()  # oldest first
        self._next_seq = 0
        self._receipted = -1                # highest seq the writer confirmed
        self._spooled_through = -1          # highest seq moved to the spool
        self._last_spool_error: Optional[str] = None  # the last spool failure, said with the records it lost (_spool_failed)
        self._sent_max = -1                 # highest seq ever handed to the data socket
        self._late_lost = 0                 # records logged after the close that the spool could not take (_spool_late)
        self._copied_through = -1           # highest seq copied to the spool while the writer was away (kept in memory too)
        self._writer_away = False           # the sender found the writer away (spool_after) and copied what it held
        self._reached = False               # a handshake with the writer completed, on either connection
        self._unreached_reported = False    # LOGFUNNEL_ERR_CONNECT / _HANDSHAKE reported
        self._handshake: Optional[HandshakeWatch] = None  # the last sender session's
        self._spool: Optional[SpoolWriter] = None
        self._thread: Optional[_native.Thread] = None
        self._closing = False
        self._closed = False
        self._close_ended = False           # close() has returned (or raised): nothing of it is left to wait for
        self._close_callers: Set[int] = set()  # threads inside close(): one re-entered there returns at once
        self._exit_closed = False           # closed by the end of the process, not by close(): later lines go to the spool
        self._idle = False                  # the sender sleeps with nothing queued: wake it for the next line
        self._hurry = False                 # flush() or close() waits: cut what is queued at once
        self._broken = False                # the sender failed too often: records are dropped and counted
        self._overflowing = False           # a 'block' wait ran out with no spool: past the mark, drop and count
        self._broken_drops = 0              # dropped with no sender: it gave up
        self._gave_up: Optional[SenderFailed] = None  # that it gave up, not yet said (_say_gave_up)
        self._start_retry_at = 0.0          # a sender that could not start is tried again from then
        self._start_failed = False          # reported once
        self._producer_id = b''
        self._producer_made = 0             # when _producer_id was made (time.monotonic_ns()): the spool's preamble says it
        self._sessions = 0                  # sender sessions that opened their sockets
        self._beat_due = 0.0                # the sender thread shows life again by then (_beat)
        self.stats: Dict[str, int] = {'records': 0, 'batches': 0, 'resends': 0, 'redials': 0, 'confirmed': 0, 'dropped': 0,
                                      'spooled': 0, 'spooled_records': 0, 'lost': 0, 'spool_errors': 0, 'spool_copies': 0,
                                      'too_large': 0, 'sent_unconfirmed': 0}

    def send(self, line: Union[str, bytes]) -> None:
        """Queues one line (str or bytes, without newline). Raises ValueError for a line with a
        newline or bytes that are not UTF-8 (the writer would refuse the whole batch with it),
        RecordTooLarge (a ValueError, LOGFUNNEL_ERR_RECORD_TOO_LARGE, counted in
        ``stats['too_large']``) for a line over max_frame_bytes; Closed (a RuntimeError) after close(). Lone surrogates in a
        str (``os.fsdecode`` of a file name that is not UTF-8) are written as JSON escapes
        (``\\udcff``), so the record and, in a JSON line, the exact text are kept."""
        if type(line) is str:
            try:
                data = line.encode('utf-8') + b'\n'
            except UnicodeEncodeError:
                data = _SURROGATE.sub(_json_escape, line).encode('utf-8') + b'\n'
        else:
            data = bytes(line) + b'\n'
            try:
                data.decode('utf-8')
            except UnicodeDecodeError as err:
                raise ValueError('a line must be UTF-8: %s' % err) from None
        size = len(data)
        if data.find(b'\n') != size - 1:
            raise ValueError('a line must not contain a newline')
        if size > self.max_frame_bytes:
            self.stats['too_large'] += 1
            raise RecordTooLarge(size, self.max_frame_bytes)
        with self._lock:
            if self._closing:
                if self._exit_closed and self._spool_late(data):
                    return
                raise Closed('logfunnel client used after close()')
            if self._thread is None and not self._broken:
                if _forks.no_threads_here():
                    self._spool_unsent(data)  # a uWSGI master: no sender thread may start here
                    return
                self._start()  # when it cannot, the record is kept (see _make_room and _wait_confirmed)
            if self._broken:
                self._broken_drops += 1
                self.stats['lost'] += 1
                return
            waited = self._held_bytes + size > self.high_water_mark
            if waited and not self._make_room(size):
                return
            if self._closing:
                if waited or self._exit_closed:  # close() ran while this call waited for room (the wait releases the lock)
                    if not self._spool_late(data):
                        raise Closed('logfunnel client closed while the record waited for room')
                    return
                # A signal handler of this thread closed it as the sender started (a SIGHUP handler
                # that reconfigures logging: dictConfig closes the handler): as a send after
                # close(), so that the caller's next client takes the line in its order. Before,
                # it went to the spool, and the writer took it after the lines logged later
                # (reordered: 18 to 49 in 200 reconfigures).
                raise Closed('logfunnel client used after close()')
            # Counted before it is queued: a signal handler that runs in between (it may, in the
            # main thread) cuts the queue into batches from this total, which must not be short.
            self._queued_bytes += size
            self._held_bytes += size
            # The record count and the queue change with no call between them (Python runs a
            # signal handler only after a call or at a loop's jump): the handler reads the count
            # to tell whether a KeyboardInterrupt raised in this call came before the line was
            # queued or after (then its seq is taken).
            self.stats['records'] += 1
            self._queued.append(data)
            # The sender sleeps until told: woken for the first line after it went idle (it sends
            # at once if its last batch went batch_delay ago, else gathers until then) and for a
            # full batch, not for every line.
            wake = self._idle or self._queued_bytes - size < self.max_batch_bytes <= self._queued_bytes
            if wake:
                self._idle = False
        if wake:
            self._wake()
        # Every RECHECK s, the main thread looks for fatal signals back at SIG_DFL (asyncio's loop
        # closed): ours again (exit.recheck). Other threads leave it to its next log call.
        now = _monotonic()
        if now >= _exit.recheck_at and _native.get_ident() == _native.main_ident:
            _exit.recheck(now)

    def _make_room(self, size: int) -> bool:
        """on_full (lock held): False when the record is dropped. 'block' waits at most
        block_timeout (a log call must not hold its thread for ever: an application whose writer
        is gone would hang), then moves what is held to the spool and goes on; with no spool,
        records past high_water_mark are dropped and counted until the writer confirms again.
        While the spool holds batches the writer has not taken (they wait for it in memory, see
        the sender's session), what is held follows them there whatever on_full says: the writer
        stopped but connected, 'block' does not wait again for each high_water_mark."""
        if (self.on_full == 'spool' or self._spooled_through > self._receipted) and self._spool_held():
            return True
        if self.on_full == 'drop' or self._overflowing:
            self.stats['dropped'] += 1
            return False
        if self._thread is None:  # no sender (it could not start): nothing makes room by waiting
            return self._spool_or_overflow()
        since = time.monotonic()
        deadline = None if self.block_timeout == 0 else since + self.block_timeout
        while self._held_bytes + size > self.high_water_mark:
            if self._closing:
                # close() ended meanwhile: what it held is in the spool, or, with none, counted
                # lost and reported; the caller gives this record the same end. Before, with no
                # spool the lost records still counted as held, and the call waited on until
                # block_timeout or, with 0, the sender's STALL (30 s) after the close.
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return self._spool_or_overflow()
            if self._stalled(since):  # blocked for good in a call: no room will come (block_timeout 0 or over STALL)
                return self._stalled_for_room()
            wait_holding(self._changed, self._lock, JOIN_SLICE if left is None else min(left, JOIN_SLICE))
        return True

    def _stalled_for_room(self) -> bool:
        """A log call waiting for room finds the sender thread with no sign of life for STALL s
        (lock held): as at block_timeout, what is held goes to the spool (or, with none, records
        past high_water_mark are dropped and counted), said once with the count."""
        spooled, lost = self.stats['spooled_records'], self.stats['lost']
        room = self._spool_or_overflow()
        self._say_stalled("a log call waiting for room (on_full 'block') goes on without it", spooled, lost)
        return room

    @property
    def broken(self) -> bool:
        """True once the sender failed too often and gave up (records are dropped and counted)."""
        return self._broken

    def hurry(self) -> None:
        """Ends the gathering window now: what is queued goes to the sender thread at once, not
        up to batch_delay later (exit.after_request: a uWSGI worker's request has ended)."""
        with self._lock:
            if not self._queued or self._thread is None or self._closing or self.pid != os.getpid():
                return
            self._hurry = True
            self._idle = False
        self._wake()

    def _held_records(self) -> int:
        return len(self._queued) + sum(count for _seq, count, _payload in self._unacked)

    def _start(self) -> None:
        """Starts the sender thread (lock held). When it cannot (no free descriptor for its
        wake-up pipe, no thread could be made: a pids limit, memory), the failure is reported
        once and the start tried again START_RETRY s later. Records are kept meanwhile; past
        high_water_mark and at close they go to the spool (_make_room, _wait_confirmed), so a log
        call never waits for a sender that does not exist."""
        now = time.monotonic()
        if now < self._start_retry_at:
            return
        try:
            self._open_wake_pipe()
        except OSError as err:
            self._cannot_start(err, now)
            return
        self._producer_id = os.urandom(16)
        self._producer_made = time.monotonic_ns()
        _exit.install_finalizer()
        _exit.install_signal_handlers()
        _exit.watch_main_thread()
        # A real OS thread, even under gevent or eventlet (_native): as a greenlet, its ZeroMQ poll held the hub.
        thread = _native.Thread(self._run, 'logfunnel-sender')
        try:
            thread.start()
        except RuntimeError as err:
            self._close_wake_pipe()
            self._cannot_start(err, now)
            return
        self._thread = thread
        if _forks.say_no_threads():
            self._fail(NoThreads())

    def _cannot_start(self, err: BaseException, now: float) -> None:
        self._start_retry_at = now + START_RETRY
        if not self._start_failed:
            self._start_failed = True
            self._fail(SenderFailed(err, 0, False, started=False))

    def _batch_queued(self) -> None:
        """Moves queued lines into batches of at most max_batch_bytes (lock held)."""
        if not self._queued:
            return
        batches = cut_batches(self._queued, self._queued_bytes, self.max_batch_bytes)
        self._queued = []
        self._queued_bytes = 0
        for count, payload in batches:
            self._unacked.append((self._next_seq, count, payload))
            self._next_seq += 1

