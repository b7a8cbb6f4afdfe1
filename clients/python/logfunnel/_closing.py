"""How a producer ends: flush(), close() and its exit paths (the end of the process, a Client
collected without close()), and what a close reports. A base class of ``_Producer``: it works
on the producer's state (queued lines, batches without a receipt, the sender thread, the spool)
under the producer's lock."""

from __future__ import annotations

import os
import threading
import time
from typing import Optional

from . import _native
from . import exit as _exit
from .errors import CloseTimeout, lost_text, say
from ._waits import wait_holding
from .spool import SEGMENT_MAX_AGE

# At the end of the process receipts are awaited at least this long (s), as Node's producers do.
MIN_EXIT_LINGER = 0.1
# How a close's wait ended (_wait_confirmed): every line has a receipt; the writer is away and
# every line without one is in the spool; this process may not use the endpoint (permission denied).
CONFIRMED, AWAY, UNUSABLE = 'confirmed', 'away', 'unusable'


class Closer:
    """The ending side of a ``_Producer`` (see the module's docstring)."""

    def flush(self, timeout: Optional[float] = None) -> None:
        """Blocks until every line sent so far has a receipt; CloseTimeout after ``timeout`` s."""
        self._wait_confirmed(self.close_timeout if timeout is None else timeout, 'flush')

    def _flush_or_spooled(self, timeout: Optional[float] = None) -> None:
        """flush() for the handler (``logging.shutdown()`` flushes, then closes): it also returns
        once the writer is away and every line without a receipt is copied to the spool (kept too)."""
        self._wait_confirmed(self.close_timeout if timeout is None else timeout, 'flush', spooled_ends=True)

    def close(self, timeout: Optional[float] = None) -> None:
        """Sends what is queued and waits for its receipts (at most ``timeout`` s, default
        close_timeout); what is still without a receipt then goes to the spool. While the writer
        is away (no answer for ``spool_after`` s, the rule that copies batches to the spool: no
        connection, or stopped), the wait ends as soon as every line without a receipt is in the
        spool. Closes the sockets. Raises CloseTimeout only for records that could not be spooled
        (lost). A close that leaves records in the spool with the writer never reached reports
        LOGFUNNEL_ERR_CONNECT or _HANDSHAKE through ``on_error`` once, if connect_timeout has
        not done so yet."""
        # Not `_closed` (set as the sockets close): a close in progress in another thread (a dropped
        # Client's closer) is waited for, reports and all. Before, the exit hooks found the producer
        # closed and returned, and the interpreter ended that thread mid-report: no word.
        if self.pid != os.getpid() or self._close_ended:
            return
        me = threading.get_ident()
        if me in self._close_callers:
            # Re-entered in the thread whose close this is: a signal handler ran inside it (an
            # application's SIGTERM handler calling logging.shutdown(), as the README advises).
            # Waiting for that close waited for ever: it resumes only once this returns. It
            # finishes the work, and spools what is held should the handler raise (sys.exit()).
            return
        self._close_callers.add(me)
        try:
            with self._close_lock:
                try:
                    if not self._closed:
                        self._close(timeout)
                finally:
                    self._close_ended = True
        finally:
            self._close_callers.discard(me)

    def _close(self, timeout: Optional[float]) -> None:
        deadline = self.close_timeout if timeout is None else timeout
        spooled_before, lost_before = self.stats['spooled_records'], self.stats['lost']
        lost, why = 0, ''
        ended = False
        away = False
        ending = None  # how the close ended, for its report (Node's words)
        try:
            try:
                outcome = self._wait_confirmed(deadline, 'close', spooled_ends=True)
            except CloseTimeout:
                if self._broken:  # nothing was waited for: the sender gave up (_wait_confirmed ends at once)
                    why = 'close, the sender gave up (it failed too often)'
                    lost = self.abandon(why, quiet=True)
                    ending = 'close ended before its %d ms deadline: the sender gave up' % (deadline * 1000)
                else:
                    why = 'close deadline'
                    lost = self.abandon(why, quiet=True)
                    ending = 'close took longer than %d ms' % (deadline * 1000)
            else:
                # The writer is away and every line without a receipt is in the spool, or this
                # process may not use the endpoint at all (permission denied): the rest of the
                # deadline would only hold the caller up.
                if outcome == AWAY:
                    away, why = True, 'close, the writer away'
                    lost = self.abandon(why, quiet=True)
                    ending = 'close ended before its %d ms deadline: the writer does not answer' % (deadline * 1000)
                elif outcome == UNUSABLE:
                    why = 'close, the endpoint refused to this process'
                    lost = self.abandon(why, quiet=True)
                    ending = ('close ended before its %d ms deadline: this process may not use the endpoint'
                              % (deadline * 1000))
            ended = True
        except BaseException:
            # The wait ended by an exception of the caller's (KeyboardInterrupt: Ctrl-C; SystemExit
            # from a signal handler of the application's): what has no receipt goes to the spool,
            # as at the deadline. Before, the close ended here with nothing spooled, and every
            # later close and exit hook found it closed: the records were lost without a word.
            self.abandon('close interrupted')
            raise
        finally:
            with self._lock:
                self._closing = True
                self._closed = True
                self._changed.notify_all()  # a sender pausing before a new session
            joined = True
            if self._thread is not None:
                self._wake()
                # Closed here, not by the thread: a sender that gave up has ended, and a wake-up
                # written meanwhile must not reach a descriptor that reused the number. A thread
                # blocked for good in a call keeps its pipe (it may still write it).
                joined = self._join_sender(spooled_before, lost_before)
                if joined:
                    with self._lock:
                        self._close_wake_pipe()
            # Under the lock: a daemon thread logging meanwhile appends to the open segment
            # (_spool_late, lock held). Sealed without it, its write met the descriptor just
            # closed (EBADF: 'a record ... was lost', 5 of 20 runs with 4 threads logging at exit)
            # or, reused by then, another file.
            with self._lock:
                self._seal_spool()
                if lost and joined:
                    # The sender read the receipts that came meanwhile as it ended: those records
                    # are confirmed, not lost (before, they were counted lost all the same).
                    lost = min(lost, self._held_records())
                sent = self._sent_held() if lost else 0
            self._report_dropped()
        if lost:
            self.stats['lost'] += lost
            self.stats['sent_unconfirmed'] += sent
        # With no writer ever reached, LOGFUNNEL_ERR_CONNECT (or _HANDSHAKE) says why, and how the
        # close ended; records lost are said with LOGFUNNEL_ERR_CLOSE_TIMEOUT, as Node's close()
        # rejects with it; records in the spool, for the application's close() only (the end of
        # the process says nothing, as Node's), by the one or the other.
        unreached = ended and self._report_unreached(None if self._exit_closed else ending, lost)
        text = lost_text(why, lost, sent, self._lost_cause()) if lost else ''
        if lost:
            self._fail(CloseTimeout(text, lost, lost=lost))
        elif (ended and ending is not None and not unreached and not self._exit_closed and not self._broken
              and self.stats['spooled_records']):
            with _exit.spooling:
                self._fail(CloseTimeout.spooled_at_close(ending, self.stats['spooled_records'], self.spool_dir, away))
        if lost:
            raise CloseTimeout(text, lost, lost=lost)

    def close_or_report(self, at_exit: bool = False) -> None:
        """close(), writing a CloseTimeout to stderr instead of raising it (for exit hooks). At the
        end of the process, with a spool, receipts are awaited ``linger`` s (at least
        MIN_EXIT_LINGER), not close_timeout: a program whose writer is away still ends at once,
        its records in the spool, as Node's producers do on 'beforeExit'."""
        if at_exit:
            self._exit_closed = True
        try:
            self.close(max(self.linger, MIN_EXIT_LINGER) if at_exit and self.spool_dir is not None else None)
        except CloseTimeout:
            pass  # reported already (_close, through on_error)

    def release(self) -> None:
        """Its Client was collected without close(): close in a thread of its own (the collector
        may run inside any call, even a signal handler, so it must not wait here). The exit
        hooks still find this producer until that close ends."""
        if self.pid != os.getpid() or self._closed or self._thread is None:
            return
        try:
            # As at the end of the process: receipts are awaited `linger` s, then the rest is spooled
            # (a plain close waited close_timeout, and an exit meanwhile waited for it: 10 s).
            _native.Thread(self.close_or_report, 'logfunnel-close', (True,)).start()
        except RuntimeError:  # interpreter shutdown: no new threads; keep what is held, without waiting
            self.abandon('dropped at exit')

    def _report_dropped(self) -> None:
        self._say_gave_up()
        if self.stats['dropped']:
            why = '' if self.on_full == 'drop' else ' (no room, and %s)' % (
                'no spool to take what is held' if self._last_spool_error is None
                else 'the spool could not be written: %s' % self._last_spool_error)
            say("logfunnel: on_full %r: %d records dropped past high_water_mark%s\n"
                             % (self.on_full, self.stats['dropped'], why))
        if self._broken_drops:
            say('logfunnel: LOGFUNNEL_ERR_SENDER_FAILED: %d records dropped with no sender to take them '
                '(it failed too often)\n' % self._broken_drops)

    def _unreached_known(self) -> bool:
        """A writer never reached may still answer, or show why not (HandshakeWatch.evident):
        a close that would end early with everything in the spool waits for that, at most
        UNREACHED_AT_CLOSE_AFTER s from the start, so that its report holds and a slow writer
        still gets the records."""
        watch = self._handshake
        return watch is None or self._reached or watch.evident(time.monotonic())

    def _report_unreached(self, ending: Optional[str] = None, lost: int = 0) -> bool:
        """After a close that left records in the spool: the writer never reached and not said
        yet (connect_timeout had not passed; the writer away, the close ended early), the
        connect or handshake failure is reported now, once. Said nowhere, a wrong endpoint or
        CURVE key in a short-lived process would leave records in a spool no writer takes."""
        watch = self._handshake
        if watch is None or self._reached or self._unreached_reported or not (self.stats['spooled_records'] or lost) \
                or not watch.says_unreached(time.monotonic()):
            return False
        self._unreached_reported = True
        with _exit.spooling:  # a fatal signal meanwhile (Pool.terminate()) ends the process after it, not mid-report
            self._fail(watch.at_close(time.monotonic(), self.stats['spooled_records'], self.spool_dir or '?', ending))
        return True

    def _wait_confirmed(self, timeout: float, what: str, spooled_ends: bool = False) -> str:
        """Waits until every line so far has a receipt (CONFIRMED), or, with ``spooled_ends``,
        until the writer is away and every line without one is in the spool (AWAY), or this
        process may not use the endpoint (UNUSABLE: no writer there will ever take them from this
        process; HandshakeWatch.forbidden); CloseTimeout after ``timeout`` s."""
        if self._thread is None:
            held = self._held_records()
            if held:  # the sender never started: nothing will confirm them
                raise CloseTimeout('the sender never started: %d records without a receipt' % held, held)
            return CONFIRMED
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed:
                # The sender has ended: nothing will be confirmed any more. Before, the flush that
                # logging.shutdown() makes after the exit hook closed the handler waited out
                # close_timeout (10 s more at exit) for records that close could not keep.
                held = self._held_records()
                if held:
                    raise CloseTimeout('%s after close: %d records without a receipt' % (what, held), held)
                return CONFIRMED
            self._hurry = True
            self._wake()
            while self._queued or self._unacked:
                if spooled_ends and self._writer_away and not self._queued and self._unacked[-1][0] <= self._copied_through \
                        and self._unreached_known():
                    return AWAY
                # Before, such a close waited out its whole deadline (10 s by default) for a
                # connection libzmq retries for ever, with no spool to keep the records either.
                if spooled_ends and not self._reached and self._handshake is not None and self._handshake.forbidden():
                    return UNUSABLE
                left = deadline - time.monotonic()
                if left <= 0 or self._broken:  # broken: nothing will be confirmed any more
                    held = self._held_records()
                    why = 'the sender gave up' if self._broken else '%s took longer than %.1f s' % (what, timeout)
                    raise CloseTimeout('%s: %d records without a receipt' % (why, held), held)
                wait_holding(self._changed, self._lock, min(left, SEGMENT_MAX_AGE))
                self._seal_old_segment()
        return CONFIRMED
