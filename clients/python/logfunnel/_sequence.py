"""The ``seq`` counter of the handlers of a process that write to one writer with one
``seq_key``: one count per pid for them all, whatever the handler churn (handlers alive at once,
made per request and dropped or closed, made again later), so that ``logfunnel verify`` sees
0, 1, 2, ... per pid. Before, each handler counted on its own (a closed one handed its count
to the next): handlers alive at once, or one dropped and the next made, counted the same numbers
again (8 threads making a handler per request, 4,800 records: 4,550 duplicates).

The handlers share the lock that logging holds over their emit (it replaces each one's own),
so a record's seq is taken and its line queued with no other record of theirs in between: the
file's order is seq's. It is a real OS lock (_native), whatever gevent or eventlet patched: with
threading's, gevent's once patched, an OS thread (gevent's threadpool) waiting for it while a
greenlet held it never woke, and the program hung. Records logged while an emit of theirs runs in the same thread (a signal
handler's) wait in ``deferred`` to follow it, whichever of those handlers logged them."""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any, Deque, Dict, Optional, Tuple

from . import _native

if TYPE_CHECKING:
    import logging

    from .handler import LogfunnelHandler


class Sequence:
    """What the handlers writing one sequence share: ``lock`` (each one's ``Handler.lock``),
    ``seqs`` (pid -> its next seq; bounded by the system's pid_max), ``deferred`` ((handler,
    record) pairs logged inside an emit, oldest first), ``emitting`` (an emit runs: only read
    and set under ``lock``), and ``producer``, the ``_Producer`` of the client that took the last
    line (not the Client: that one is still collected when its handlers are gone)."""

    __slots__ = ('lock', 'seqs', 'deferred', 'emitting', 'producer')

    def __init__(self) -> None:
        self.lock = _native.RLock()
        self.seqs: Dict[int, int] = {}
        self.deferred: Deque[Tuple['LogfunnelHandler', 'logging.LogRecord']] = collections.deque()
        self.emitting = False
        self.producer: Optional[Any] = None

    def forked(self) -> None:
        """In a forked child: a producer of its own counts from 0, and the parent's lock may have
        been held by one of its threads, which the child does not have."""
        self.lock = _native.RLock()
        self.seqs = {}
        self.deferred.clear()
        self.emitting = False
        self.producer = None


# (endpoint, seq_key) -> its Sequence, for the process's life (a few: one per writer and key), so
# that a handler made after the others are gone (closed, or dropped) goes on from their count: a
# dictConfig or fileConfig replacing the configuration closes the handlers before it makes new ones.
_sequences: Dict[Tuple[str, str], Sequence] = {}


def shared_sequence(endpoint: str, seq_key: str) -> Sequence:
    # setdefault: two threads making the first handlers at once get the same one.
    return _sequences.setdefault((endpoint, seq_key), Sequence())


def all_sequences() -> Any:
    return list(_sequences.values())


def forked() -> None:
    """In a forked child (LogfunnelHandler._forked, which then gives each handler its lock)."""
    for sequence in list(_sequences.values()):
        sequence.forked()
