"""A producer's sender thread: its ZeroMQ sockets, the batches it sends and the receipts it
reads, and how it goes on after a fault. A base class of ``_Producer``: it works on the
producer's state (queued lines, batches without a receipt, the spool) under the producer's lock."""

from __future__ import annotations

import errno
import os
import signal
import time
from typing import List, Tuple

import zmq

from . import _native
from ._context import shared_context
from ._inherited import close_connections_to, writer_peers
from ._liveness import WriterLiveness, heartbeat_ms
from ._waits import wait_holding
from .errors import LogfunnelError, SenderFailed, SenderStalled, report
from .exit import ASYNC_SIGNALS
from .spool import SEGMENT_MAX_AGE, fd_identity
from .wire import (CAP_REDIAL_DELAY, CAP_REDIAL_MAX_DELAY, GAP_REWIND_INTERVAL, HEADER, PROTOCOL_VERSION, HandshakeWatch,
                   close_push, decode_receipt, open_push, open_sockets, too_large_limit)

Batch = Tuple[int, int, bytes]  # seq, records, payload


# More sender failures than this within FAULT_WINDOW s and the sender gives up (a bug that
# repeats), as Node's producers do (producer/sender-guard.ts).
MAX_FAULTS = 5
FAULT_WINDOW = 60.0
# A new session starts after RESTART_DELAY s, doubling with each fault in the window, at most
# RESTART_MAX_DELAY s.
RESTART_DELAY = 0.1
RESTART_MAX_DELAY = 2.0
# No free descriptor for a session's ZeroMQ context and sockets (EMFILE: the process is at its
# RLIMIT_NOFILE; ENFILE: the system's table is full) passes once the application closes some: not
# a fault that counts toward giving up. The session is tried again after RESTART_DELAY s,
# doubling up to NO_FD_MAX_DELAY s, for as long as it lasts, as Node's producers retry a
# connection whose socket could not be made (producer/zmtp/socket.ts: back-off up to 1 s, never
# a fault).
NO_FD_ERRNOS = (errno.EMFILE, errno.ENFILE)
NO_FD_MAX_DELAY = 1.0
# A sender thread with no sign of life for this long (s) past the time its next one was due is
# blocked for good in a call (a bug, a library that hangs): close() and a log call waiting for
# room (on_full 'block') go on without it, as Node's producers do after 30 s without a beat. It
# shows life at each turn of its loop, each session and each pause, and says how long it means to
# wait in between, so a thread merely slow (or idle in a long poll) is never given up on.
STALL = 30.0
# close() waits for the thread to end in slices of this long (s), judging its signs of life.
JOIN_SLICE = 0.25
JOIN_OWNED_SLICE = 0.005  # the same, while the closing thread holds the producer's lock (_join_sender)


class SenderThread:
    """The sender thread's side of a ``_Producer`` (see the module's docstring)."""

    def _run(self) -> None:
        # A process-directed signal (SIGTERM from Pool.terminate(), SIGHUP, ...) goes to any thread
        # that does not block it; in this one, Python would only set a flag, and a main thread
        # asleep in a blocking call would not run its handler until that call returns.
        signal.pthread_sigmask(signal.SIG_BLOCK, ASYNC_SIGNALS)
        faults: List[float] = []
        starved = 0  # sessions in a row that found no free descriptor
        while True:
            self._beat()
            opened = self._sessions
            try:
                self._session()
                return
            except Exception as err:  # noqa: BLE001 - a logger's thread must not die of it
                starved = 0 if self._sessions != opened else starved
                if getattr(err, 'errno', None) in NO_FD_ERRNOS:
                    starved += 1
                    if not self._no_descriptor(err, starved == 1):
                        return
                    self._pause(min(NO_FD_MAX_DELAY, RESTART_DELAY * 2 ** (starved - 1)))
                    continue
                now = time.monotonic()
                faults = [t for t in faults if now - t < FAULT_WINDOW] + [now]
                if not self._fault(err, len(faults) > MAX_FAULTS):
                    return
                self._pause(min(RESTART_MAX_DELAY, RESTART_DELAY * 2 ** (len(faults) - 1)))

    def _fault(self, err: BaseException, give_up: bool) -> bool:
        """The sender failed: reports it; True when a new session is to start (it sends again,
        from the first batch without a receipt). Giving up, what is held goes to the spool."""
        with self._lock:
            spooled = self.stats['spooled_records']
            if give_up:
                self._broken = True
                self._spool_held()
                self._seal_spool()
            failure = SenderFailed(err, self.stats['spooled_records'] - spooled, not give_up)
            if give_up:
                # Said below, or by the end of the process if that comes first: a log call that
                # saw the sender broken, then a fatal signal, ended the process before this thread
                # said it (1 of 2 runs of test_exit.py beside a busy machine).
                self._gave_up = failure
            self._changed.notify_all()
            closing = self._closing
        if give_up:
            self._say_gave_up()
        else:
            self._fail(failure)
        return not give_up and not closing

    def _say_gave_up(self) -> None:
        """Says once that the sender gave up (SenderFailed, 'too many failures'), from the sender
        thread or from the end of the process, whichever comes first."""
        with self._lock:
            failure, self._gave_up = self._gave_up, None
        if failure is not None:
            self._fail(failure)

    def _no_descriptor(self, err: BaseException, first: bool) -> bool:
        """No free descriptor for the session (see NO_FD_ERRNOS): reported once, at the first of
        a run of them; True when a new session is to start (not closing)."""
        if first:
            self._fail(SenderFailed(err, 0, True, no_descriptor=True))
        with self._lock:
            return not self._closing

    def _pause(self, seconds: float) -> None:
        """Waits before a new session (a fault of the environment, such as no free file
        descriptor, may pass); close() and abandon() end the wait."""
        deadline = time.monotonic() + seconds
        self._beat(deadline)
        with self._lock:
            while not self._closing and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())

    def _session(self) -> None:
        """One run of the sender: its sockets, until close(). Raises what a fault raises."""
        # Before connecting: what a child forked while the connections are open closes (reset()).
        self._writer_peers = writer_peers(self.endpoint, self.receipt_endpoint)
        push, sub, monitor, receipts = open_sockets(shared_context(), self.endpoint, self.receipt_endpoint,
                                                    self._producer_id, self._curve, self.send_high_water_mark,
                                                    heartbeat_ms(self.spool_after, self.receipt_timeout))
        self._sessions += 1
        poller = zmq.Poller()
        for sock in (sub, monitor, receipts, self._wake_r):
            poller.register(sock, zmq.POLLIN)
        sent_through = -1   # highest seq sent since the last rewind
        progress_at = time.monotonic()
        last_rewind = cut_at = 0.0
        handshake = self._handshake = HandshakeWatch(self.endpoint, self.connect_timeout, self._curve is not None)
        liveness = WriterLiveness(self.spool_after, progress_at)
        held = False        # batches wait for receipts
        # Receipt timeouts in a row with no receipt between them. Over tcp a second one re-dials
        # the data connection: one the network dropped without a word (a NAT or firewall entry
        # gone, a partition) is never ended by the kernel for about 15 minutes, and every resend
        # went into it (a producer behind a proxy that stopped forwarding lost 86,480 of 100,000).
        # The receipt connection needs none: libzmq's heartbeat on it re-dials a dead one.
        timeouts = 0
        redial = self.endpoint.startswith('tcp://')
        # Refused at the writer's connection cap (ZAP 500): libzmq ended that connection for good;
        # a new data socket at cap_redial_at (see wire.ZAP_STATUS_FULL).
        cap_redial_at = float('inf')
        cap_delay = CAP_REDIAL_DELAY
        try:
            while True:
                self._beat()
                with self._lock:
                    if self._closing:
                        return
                    now = time.monotonic()
                    if self._queued and (self._queued_bytes >= self.max_batch_bytes or self._hurry
                                         or now - cut_at >= self.batch_delay):
                        cut_at = now
                        self._batch_queued()
                    self._hurry = False
                    gathering = bool(self._queued)
                    self._idle = not gathering
                    # While the spool holds batches without a receipt, the writer must take them
                    # before any later one (it refuses a batch that skips ahead). With the writer
                    # away, later batches follow them there; with it connected, they wait here
                    # until its receipt says it has taken the spool, then go through the socket.
                    # (Before, they followed into the spool while connected too: under continuous
                    # logging the spool always held a batch the writer had not taken yet, so
                    # on_full='spool' stayed spooling long after the writer was back.)
                    holding = self._spooled_through > self._receipted
                    if holding and self._unacked and (not handshake.up or liveness.judged):
                        self._spool_held()
                    self._seal_old_segment()
                    batches = [] if holding else [b for b in self._unacked if b[0] > sent_through]
                    base = self._unacked[0][0] if self._unacked else self._next_seq
                    waiting = bool(self._unacked) and not holding
                    if bool(self._unacked) != held:
                        held = not held
                        if held:
                            liveness.wait_from(now)
                blocked = False
                for seq, count, payload in batches:
                    header = HEADER.pack(b'LF', PROTOCOL_VERSION, 0, count, seq, base, self._producer_id)
                    try:
                        # Copied into the message (not lent): pyzmq would watch a lent buffer from a
                        # thread of its own, with a ZeroMQ context of its own, for no measured gain
                        # (bench/README, "Python").
                        push.send_multipart([header, payload], flags=zmq.NOBLOCK)
                    except zmq.Again:
                        blocked = True
                        break  # libzmq's queue is full (or no writer yet): retried on the next turn
                    sent_through = seq
                    self._sent_max = max(self._sent_max, seq)
                    self.stats['batches'] += 1
                now = time.monotonic()
                if not waiting:
                    progress_at = now
                elif now - progress_at >= self.receipt_timeout:
                    sent_through, progress_at = -1, now
                    self.stats['resends'] += 1
                    timeouts += 1
                    # Refused at the writer's cap, libzmq dropped that connection already: it is redialed below.
                    if redial and timeouts >= 2 and not handshake.full:
                        timeouts = 0
                        push.disconnect(self.endpoint)  # drops what libzmq still queued for it: resent below
                        push.connect(self.endpoint)
                        self.stats['redials'] += 1
                if now >= cap_redial_at:
                    cap_redial_at = float('inf')
                    handshake.full = False
                    # The new one first: if it cannot be made (EMFILE), the session ends with the old one to close.
                    fresh = open_push(shared_context(), self.endpoint, self._curve, self.send_high_water_mark)
                    poller.unregister(monitor)
                    close_push(push, monitor)  # drops what libzmq still queued for it: resent below
                    push, monitor = fresh
                    poller.register(monitor, zmq.POLLIN)
                    sent_through = -1
                    self.stats['redials'] += 1
                    continue
                overdue = handshake.overdue(now)
                if overdue is not None:
                    self._unreached_reported = True
                    self._fail(overdue)
                copy_wait = float('inf')
                if held and self.spool_dir is not None:
                    # The writer away (no answer for spool_after: see _liveness): what has no
                    # receipt is copied to the spool, and so is each new batch until it answers.
                    if liveness.away(now):
                        with self._lock:
                            self._copy_held()
                    else:
                        copy_wait = liveness.wait(now)
                wait = 0.01 if blocked else max(0.0, self.receipt_timeout - (now - progress_at))
                if gathering:
                    wait = min(wait, max(0.0, cut_at + self.batch_delay - now))
                if self._spool is not None and self._spool.open:
                    wait = min(wait, SEGMENT_MAX_AGE)
                wait = min(wait, handshake.wait(now), copy_wait, max(0.0, cap_redial_at - now))
                self._beat(now + wait)
                events = dict(poller.poll(int(wait * 1000) + 1))
                if self._wake_r in events:
                    _native.read(self._wake_r, 4096)
                if monitor in events:
                    handshake.read(monitor)
                    if handshake.up:
                        self._reached = True
                        self._heard(liveness)
                        cap_delay = CAP_REDIAL_DELAY
                    elif handshake.full and cap_redial_at == float('inf'):
                        cap_redial_at = time.monotonic() + cap_delay
                        cap_delay = min(CAP_REDIAL_MAX_DELAY, cap_delay * 2)
                if receipts in events and liveness.read(receipts):
                    self._reached = True  # the writer's libzmq, on its receipt endpoint
                    self._heard(liveness)
                while sub in events:
                    try:
                        frames = sub.recv_multipart(flags=zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._heard(liveness)
                    acked, gap = self._receipt(frames)
                    if acked:
                        timeouts = 0
                        progress_at = time.monotonic()
                        liveness.wait_from(progress_at)
                    limit = too_large_limit(frames, self._producer_id)
                    if limit is not None:
                        self._too_large(limit)
                    if gap and time.monotonic() - last_rewind >= GAP_REWIND_INTERVAL:
                        sent_through, last_rewind = -1, time.monotonic()
                        self.stats['resends'] += 1
        finally:
            self._beat()
            try:
                handshake.read(monitor)  # what the connection came to, for a close that reports it (_report_unreached)
                # Receipts that came while close() gave up: their records are confirmed, not
                # counted lost (before, a batch receipted just before the deadline was).
                while True:
                    self._receipt(sub.recv_multipart(flags=zmq.NOBLOCK))
            except zmq.ZMQError:  # zmq.Again included: none left
                pass
            close_push(push, monitor)
            sub.disable_monitor()
            for sock in (receipts, sub):
                sock.close(0)

    def _beat(self, due: float = 0.0) -> None:
        """The sender thread shows life: now, and next by ``due`` (a wait it means to make)."""
        self._beat_due = max(time.monotonic(), due)

    def _stalled(self, since: float) -> bool:
        """True when the sender thread has shown no life for STALL s past when it was due (or
        past ``since``, when the caller began to wait for it): blocked for good in a call."""
        return time.monotonic() - max(self._beat_due, since) >= STALL

    def _join_sender(self, spooled: int, lost: int) -> bool:
        """close(): waits for the sender thread to end; True once it has. One with no sign of
        life for STALL s (see _stalled) is left where it is blocked, reported with what the close
        did with its records (``spooled`` and ``lost`` before the close); False."""
        thread = self._thread
        since = time.monotonic()
        while thread is not None and thread.is_alive():
            if self._lock._is_owned():
                # This close runs inside a frame of this thread that holds the lock: a signal
                # handler that closed the client ran inside send() (a SIGHUP handler calling
                # dictConfig). The sender must take the lock to see the close and end: let it go
                # while waiting, as the close's wait for receipts does. Before, it was held, and
                # the close waited STALL (30 s) for a sender that could not end, then said it
                # gave no sign of life (1 of 47 runs of 200 reloads from SIGHUP while logging).
                wait_holding(self._changed, self._lock, JOIN_OWNED_SLICE)
            else:
                thread.join(JOIN_SLICE)
            if thread.is_alive() and self._stalled(since):
                self._say_stalled('close() goes on without it', spooled, lost)
                return False
        return True

    def _say_stalled(self, what: str, spooled: int, lost: int) -> None:
        """Reports that ``what`` gave up on a stalled sender thread, with the records spooled and
        lost since the counts were ``spooled`` and ``lost``."""
        self._fail(SenderStalled(STALL, what, self.stats['spooled_records'] - spooled, self.stats['lost'] - lost))

    def _heard(self, liveness: WriterLiveness) -> None:
        """The writer answered: it no longer counts as away."""
        liveness.heard()
        self._writer_away = False

    def _too_large(self, limit: int) -> None:
        """The writer refused a batch over its max_frame_bytes (``limit``), smaller than ours:
        batches are cut within it from now on, and what is held goes to the spool, where the
        writer takes batches of any size (as the Node producer does)."""
        with self._lock:
            if limit < self.max_batch_bytes:
                self.max_batch_bytes = limit
            # While the spool holds unreceipted batches, new ones wait for them (see _session).
            if self._unacked and self._spooled_through <= self._receipted and not self._closing:
                self._spool_held()

    def _open_wake_pipe(self) -> None:
        """The pipe that wakes the sender thread (lock held); OSError when no descriptor is free."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        # Which pipe it is, before the descriptors are the producer's: a fork from another thread
        # in between (os.fork() in a worker thread as the first record starts the sender) left
        # the child with descriptors and no identity, and its reset raised AttributeError.
        self._wake_pipe = fd_identity(wake_r)
        self._wake_r, self._wake_w = wake_r, wake_w

    def _close_wake_pipe(self) -> None:
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._wake_r = self._wake_w = -1

    def _close_inherited_wake_pipe(self) -> None:
        """In a forked child (reset()): the parent's wake-up pipe is of no use here (the child
        starts a sender of its own, with a pipe of its own); each end is closed if it is still
        that pipe (not a number the parent closed and reused just before the fork)."""
        for fd in (getattr(self, '_wake_r', -1), getattr(self, '_wake_w', -1)):
            if fd >= 0 and fd_identity(fd) == getattr(self, '_wake_pipe', None):
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _close_inherited_connections(self) -> None:
        """In a forked child (reset()): the parent's connections to the writer are closed (see
        _inherited), so that they end when the parent closes them, not when the child ends."""
        close_connections_to(getattr(self, '_writer_peers', frozenset()))
        self._writer_peers = frozenset()

    def _wake(self) -> None:
        try:
            _native.write(self._wake_w, b'!')  # eventlet's os.write would switch greenlets on EAGAIN
        except (BlockingIOError, OSError, AttributeError):
            pass  # the pipe is full (the thread is due to wake), or already closed

    def _fail(self, err: LogfunnelError) -> None:
        try:
            self.on_error(err)
        except Exception:  # noqa: BLE001 - a reporting hook must not stop the sender
            report(err)

    def _receipt(self, frames: List[bytes]) -> Tuple[int, bool]:
        """Applies one receipt; returns (batches confirmed, gap flag)."""
        written, gap = decode_receipt(frames, self._producer_id)
        if written is None:
            return 0, gap
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
            if self._held_bytes < self.high_water_mark:
                self._overflowing = False
            if acked:
                self._changed.notify_all()
        return acked, gap
