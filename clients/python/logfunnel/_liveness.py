"""Whether the writer answers at all, for ``spool_after``, by the rule of Node's producers
(producer/writer-liveness.ts): the writer is away once batches have waited ``spool_after`` s
without a receipt and a heartbeat PING on the receipt connection has gone unanswered for
``spool_after`` s (or that connection is not up: no writer, or one that never completed the
handshake). The writer's libzmq answers a PING with a PONG from its I/O thread, however busy
its JavaScript or its disk is, so a writer that is only slow still counts as there (so does one
slow to complete the data connection's handshake, which its JavaScript answers); one stopped
(SIGSTOP), hung or gone does not.

The PINGs are libzmq's own heartbeat on the receipt connection (ZMQ_HEARTBEAT_IVL,
ZMQ_HEARTBEAT_TIMEOUT), as Node's producers ping on theirs (the data connection's PING could
wait unread behind batches while the writer applies backpressure). pyzmq shows no PONG, so the
judgement reads what libzmq does when one is missing: it closes the connection, and the
monitor says so. libzmq counts the wait from the first PING still unanswered, as Node does; it
does not widen it on a machine whose round trips are slow (Node allows 4 times the smoothed
round trip when that is longer than ``spool_after``): there, a batch may be copied to the spool
needlessly, and the writer writes it once. libzmq runs the timer in its own thread, so a sender
thread of ours that could not run for a while judges nothing by that alone. It pings for as long
as the connection is up, idle or not (Node's producers only while batches wait): one PING and
one PONG per interval (50 ms by default) and producer.
"""

from __future__ import annotations

import time
from typing import Optional, Tuple

import zmq
from zmq.utils.monitor import parse_monitor_message

# Node's sender checks the writer this often at most (ms; producer/writer-link.ts, checkMs).
MIN_CHECK_MS = 5


def heartbeat_ms(spool_after: float, receipt_timeout: float) -> Optional[Tuple[int, int]]:
    """(ZMQ_HEARTBEAT_IVL, ZMQ_HEARTBEAT_TIMEOUT) in ms for the receipt socket, None with
    ``spool_after`` 0 (never judged away). The interval is Node's check interval (the lesser of
    receipt_timeout / 4 and spool_after / 2, at least 5 ms), the timeout ``spool_after``."""
    if spool_after <= 0:
        return None
    interval = max(MIN_CHECK_MS, int(min(receipt_timeout / 4, spool_after / 2) * 1000))
    return interval, max(1, int(spool_after * 1000))


class WriterLiveness:
    """The judgement for one sender session (see the module's docstring)."""

    def __init__(self, spool_after: float, now: float) -> None:
        self.after = spool_after
        self.receipts_up = False          # the receipt connection completed a handshake and is open
        self.silent_since = now           # from when the receipt connection has not answered
        self.waiting_since = now          # from when batches have waited without a receipt
        self.judged = False               # judged away; until heard from again

    def wait_from(self, now: float) -> None:
        """Batches start to wait (the first one held), or a receipt came."""
        self.waiting_since = now

    def heard(self) -> None:
        """The writer answered (a receipt, a handshake): it is there."""
        self.judged = False

    def read(self, monitor: zmq.Socket) -> bool:
        """Takes every event of the receipt connection's monitor; True when a handshake completed."""
        answered = False
        while True:
            try:
                event = parse_monitor_message(monitor.recv_multipart(flags=zmq.NOBLOCK))
            except zmq.Again:
                return answered
            if event['event'] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.receipts_up = answered = True
                self.heard()
            elif event['event'] == zmq.EVENT_DISCONNECTED and self.receipts_up:
                # libzmq closes it a heartbeat timeout (spool_after) after a PING went unanswered,
                # or the writer closed it (it stops): silent since then.
                self.receipts_up = False
                self.silent_since = time.monotonic() - self.after

    def silent_for(self, now: float) -> float:
        """How long the writer has not answered: 0 while the receipt connection is up, else since
        it closed (or since the session began, when it never came up)."""
        return 0.0 if self.receipts_up else now - self.silent_since

    def away(self, now: float) -> bool:
        """While batches wait: True once they have waited ``spool_after`` and the writer has not
        answered for as long (then it counts as away until heard from)."""
        if self.after > 0 and now - self.waiting_since >= self.after and self.silent_for(now) >= self.after:
            self.judged = True
        return self.judged

    def wait(self, now: float) -> float:
        """Seconds until ``away()`` may turn true with nothing heard meanwhile; infinity while the
        writer answers (a monitor event wakes the sender)."""
        silent = self.silent_for(now)
        if self.after <= 0 or self.judged or not silent:
            return float('inf')
        return max(0.0, self.after - (now - self.waiting_since), self.after - silent)
