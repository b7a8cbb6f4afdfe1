"""What a producer puts in the spool, and when: what it holds without a receipt at close, at
exit and under ``on_full='spool'`` (moved), copies while the writer is away (kept and sent on),
and lines that come after the producer closed. A base class of ``_Producer``: it works on the
producer's state (batches without a receipt, the spool writer) with the producer's lock held."""

from __future__ import annotations

import os
import time

from typing import Optional

from . import exit as _exit
from .errors import CloseTimeout, LogfunnelError, failure_text, lost_text, say
from .spool import SEGMENT_MAX_AGE, SpoolWriter
from .wire import HEADER, PROTOCOL_VERSION


class SpoolKeeper:
    """The spool side of a ``_Producer`` (see the module's docstring)."""

    def abandon(self, why: str, at_exit: bool = False, quiet: bool = False) -> int:
        """Stops sending and moves every record held without a receipt to the spool, without
        waiting (exit paths). Returns the number of records not kept (no spool, or it failed);
        those are counted in ``stats['lost']`` and reported on stderr, unless ``quiet`` (close(),
        which counts and reports them itself once the sender has read the receipts that came
        meanwhile). ``at_exit``: the process ends (a fatal signal), so lines sent from now on
        follow into the spool, and the records dropped so far are said (as close() says them)."""
        with self._lock, _exit.spooling:
            if self._closing or self.pid != os.getpid():
                return 0
            self._exit_closed = self._exit_closed or at_exit
            self._closing = True
            lost, cause = 0, None
            try:
                self._batch_queued()
                # Counted after the attempt: a spool that fills up midway keeps what it took.
                if self._held_records() and not self._spool_held():
                    lost = self._held_records()
                else:
                    self._seal_spool()
            except BaseException as err:
                # Not the spool's OSError (_spool_held counts and reports that): a bug, or an
                # exception of a signal handler of the application's. Raised on, to the caller;
                # what is still held is lost with the process, said here with its count.
                lost, cause, quiet = self._held_records(), '%s: %s' % (type(err).__name__, err), False
                raise
            finally:
                if lost and not quiet:
                    self._say_lost(why, lost, self._sent_held(), cause)
                if at_exit:
                    # The process ends by a fatal signal: no close() follows to say what was dropped
                    # (on_full 'drop', a sender that gave up); said here, or it went unsaid.
                    self._report_dropped()
                self._changed.notify_all()
        self._wake()
        return lost

    def _sent_held(self) -> int:
        """Records held without a receipt whose batch was sent (lock held): the writer may have
        them (in a socket's buffers, or written with the receipt on its way) and write them yet.
        0 before a writer was ever reached: libzmq queued them for a connection never made."""
        if not self._reached:
            return 0
        return sum(count for seq, count, _payload in self._unacked if seq <= self._sent_max)

    def _say_lost(self, why: str, lost: int, sent: int, cause: Optional[str] = None) -> None:
        """Counts ``lost`` records without a receipt that the spool could not keep (``sent`` of
        them were sent) and reports them once, through ``on_error`` (a LogfunnelHandler's
        handleError): LOGFUNNEL_ERR_CLOSE_TIMEOUT with the count and the spool's failure."""
        self.stats['lost'] += lost
        self.stats['sent_unconfirmed'] += sent
        self._fail(CloseTimeout(lost_text(why, lost, sent, cause or self._lost_cause()), lost, lost=lost))

    def _lost_cause(self) -> str:
        """Why records could not be kept, in the words of Node's producers."""
        if self.spool_dir is None:
            return 'no spool to keep them (a tcp endpoint without spool_dir)'
        if self._last_spool_error is None:
            return 'no spool to keep them, or it could not be written'
        return 'the spool could not be written: %s' % self._last_spool_error

    def _spool_late(self, data: bytes) -> bool:
        """A line for a producer that no longer sends (lock held): its log call waited for room
        while close() (or an exit path) moved what was held to the spool, or it was logged after
        the end of the process closed the producer (an atexit hook registered before logfunnel was
        imported runs after logfunnel's own, and so may a multiprocessing finalizer of lower
        priority or a daemon thread). It follows the others into the spool, as a batch after
        theirs. False with no spool (the caller reports it as logged after close()); a spool that
        cannot be written counts it as lost, reported on stderr."""
        if self.spool_dir is None or self.pid != os.getpid() or self._broken:
            return False
        self._queue_for_spool(data)
        with _exit.spooling:
            if self._spool_held():
                # At the end of the process the segment is taken once the process has ended (or
                # has left it for a second): not one file per late line.
                if not self._exit_closed:
                    self._seal_spool()
                return True
        self.stats['lost'] += 1
        self._late_lost += 1
        if self._late_lost == 1:
            # Once, not once per record: a thread logging on at the exit said it hundreds of times.
            say("logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: a record logged while the client closed was lost "
                "(%s); later ones are counted in stats['lost'], not said again\n" % self._lost_cause())
        return True

    def _queue_for_spool(self, data: bytes) -> None:
        """Queues ``data`` for the spool (lock held), with a producer id if this one never sent."""
        if not self._producer_id:
            self._producer_id = os.urandom(16)
            self._producer_made = time.monotonic_ns()
        size = len(data)
        self._queued_bytes += size
        self._held_bytes += size
        self.stats['records'] += 1  # with the queue, no call between (see send())
        self._queued.append(data)

    def _spool_unsent(self, data: bytes) -> None:
        """A line logged where no sender thread may start (lock held): a uWSGI master that forks
        its workers from the loaded application (``_forks.no_threads_here``). It goes to the spool
        at once, in a file of its own that the writer takes (a master logs little: at start, at a
        reload). Kept in memory, it would wait for the master's end, and a thread started for it
        hung the workers forked after. With no spool (tcp without ``spool_dir``), or one that
        cannot be written, it is lost: counted in ``stats['lost']`` and said once."""
        self._queue_for_spool(data)
        if self._spool_held():
            self._seal_spool()
            return
        # Not kept: a worker forked from here starts afresh (reset()), and the master sends nothing.
        lost = self._held_records()
        self._unacked.clear()
        self._queued, self._queued_bytes, self._held_bytes = [], 0, 0
        self.stats['lost'] += lost
        self._late_lost += lost
        if self._late_lost == lost:
            say('logfunnel: LOGFUNNEL_ERR_SENDER_FAILED: a record logged in the uWSGI master, where no sender thread '
                'may start (it would hang the workers forked from it), was lost (%s); later ones are counted in '
                "stats['lost'], not said again\n" % self._lost_cause())

    def _spool_or_overflow(self) -> bool:
        """No room will come by waiting (lock held): what is held goes to the spool (True), or,
        with none, records past high_water_mark are dropped and counted until the writer
        confirms again (False: this one is)."""
        if self._spool_held():
            return True
        self._overflowing = True
        self.stats['dropped'] += 1
        return False

    def _seal_spool(self) -> None:
        """Completes the open spool file, if any, so the writer can take it."""
        if self._spool is None:
            return
        with _exit.spooling:
            try:
                self._spool.seal()
            except OSError as err:
                self._spool_failed(err)

    def _spool_held(self) -> bool:
        """Moves every batch held without a receipt to the spool, oldest first (lock held), so
        the spool alone holds the sequence from the first unreceipted batch on. False when there
        is no spool or it cannot be written (nothing is removed then)."""
        if self.spool_dir is None:
            return False
        with _exit.spooling:
            self._batch_queued()
            if not self._unacked:
                return True
            base = self._unacked[0][0]
            try:
                while self._unacked:
                    seq, count, payload = self._unacked[0]
                    if seq > self._copied_through:  # a copy is there already (_copy_held)
                        self._spool_batch(seq, count, payload, base)
                    self._unacked.popleft()
                    self._held_bytes -= len(payload)
                    self._spooled_through = seq
                    self.stats['spooled'] += 1
                    self.stats['spooled_records'] += count
            except (OSError, LogfunnelError) as err:
                self._spool_failed(err)
                return False
            finally:
                self._changed.notify_all()
            return True

    def _spool_failed(self, err: BaseException) -> None:
        """A spool write failed: counted, and kept as the reason said with the records it could
        not keep, once, when they are given up (close, the exit, a fatal signal), as Node's
        producers do. Nothing is lost yet (they are held, and go to the writer if it comes back).
        Before, each new failure was a line of its own on stderr without a code or a path
        ('logfunnel: OSError: [Errno 28] No space left on device'), beside the loss report."""
        self.stats['spool_errors'] += 1
        text = failure_text(err)
        if isinstance(err, OSError) and err.filename is None:  # a write's error names no file
            text += ' (spool directory %s)' % self.spool_dir
        self._last_spool_error = text

    def _spool_batch(self, seq: int, count: int, payload: bytes, base: int) -> None:
        """Appends one batch to this producer's spool, opening its writer on first use (lock held)."""
        if self._spool is None:
            self._spool = SpoolWriter(self.spool_dir, self._producer_id.hex(), self.endpoint, self._producer_made or None)
        self._spool.append(HEADER.pack(b'LF', PROTOCOL_VERSION, 0, count, seq, base, self._producer_id), payload)

    def _copy_held(self) -> None:
        """The writer is away (no answer for ``spool_after`` s, see _liveness): every batch without
        a receipt not copied yet is copied to the spool, kept in memory and sent on, as Node's
        producers do (``spoolAfterMs``), so a process killed meanwhile (gunicorn's SIGKILL of a
        worker past its timeout) loses nothing it had batched; the writer skips whichever copy
        comes second.
        Sender thread, lock held. Once all are in the spool, ``_writer_away`` says so to a close()
        waiting for receipts: it need not wait on."""
        if self.spool_dir is None or self._closing:
            return
        new = [b for b in self._unacked if b[0] > self._copied_through]
        if new:
            with _exit.spooling:
                base = self._unacked[0][0]
                try:
                    for seq, count, payload in new:
                        self._spool_batch(seq, count, payload, base)
                        self._copied_through = seq
                        self.stats['spool_copies'] += 1
                except (OSError, LogfunnelError) as err:
                    self._spool_failed(err)
                    return
        elif self._writer_away:
            return
        self._writer_away = True
        self._changed.notify_all()

    def _close_inherited_segment(self) -> None:
        """In a forked child (reset()): the parent's open segment is the parent's to write and hand
        over; its descriptor is closed, or the child kept the file (removed by the writer once
        taken) on disk for its whole life."""
        spool = getattr(self, '_spool', None)
        if spool is not None:
            spool.close_inherited()

    def _seal_old_segment(self) -> None:
        spool = self._spool
        if spool is not None and spool.open and time.monotonic() - spool.opened_at >= SEGMENT_MAX_AGE:
            self._seal_spool()
