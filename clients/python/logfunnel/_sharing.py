"""One Client for the handlers of a process made with the same options, as Node's funnel()
destinations made with the same options share one sender: a handler made per request (or per
job) then costs an object, not a producer (a sender thread, 10 descriptors, 2 connections, and
records through the spool when made faster than the writer confirms them)."""

from __future__ import annotations

import os
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple

from . import _forks, _native
from .client import Client
from .errors import LogfunnelError, report

if TYPE_CHECKING:
    from .handler import LogfunnelHandler

# How long a shared Client is kept after the last handler made for it, whether or not any is
# still alive: a sync server's requests come one after another, each handler gone before the
# next is made, and without it each made a producer of its own (4 gunicorn workers, 2,000
# requests: up to 240 threads a worker, 1,764 spool files). Then it is released as a dropped
# Client is (closed in a thread of its own: receipts for `linger`, the rest to the spool).
KEEP_S = 5.0

# (pid, endpoint, options) -> the Client, weakly; its handlers, weakly, in _sharers.
_shared: 'weakref.WeakValueDictionary[Tuple[Any, ...], Client]' = weakref.WeakValueDictionary()
_sharers: 'weakref.WeakKeyDictionary[Client, weakref.WeakSet[LogfunnelHandler]]' = weakref.WeakKeyDictionary()
# The Clients kept for KEEP_S, and until when; the keeper thread lets them go.
_kept: Dict[Tuple[Any, ...], Tuple[Client, float]] = {}
# Real OS ones (_native): the keeper is a thread of ours, even under gevent or eventlet.
_keeping = _native.Condition()
_keeper: Optional[_native.Thread] = None
# Held while a handler takes a client, or the last one leaves it (then it is no longer shared).
# Before, a handler made in one thread as the last handler of its client closed in another could
# take that client as it closed: its records were dropped with LOGFUNNEL_ERR_CLOSED (8 threads
# making a handler per request, a third of them closed: up to 90 of 4,800 records, 1 run in 3),
# and two threads making the first handlers at once made a client each.
_sharing = _native.Lock()


def shared_client(handler: 'LogfunnelHandler', endpoint: Optional[str], options: Dict[str, Any]) -> Optional[Client]:
    """The open Client of this process for ``endpoint`` and ``options``, made when there is none,
    with ``handler`` one of its sharers from now on; None where the options cannot be a key (a
    value that is not hashable): the handler then makes its own."""
    key = (os.getpid(), endpoint, tuple(sorted(options.items())))
    try:
        hash(key)
    except TypeError:
        return None
    with _sharing:
        client = _shared.get(key)
        sharers = None if client is None else _sharers.get(client)
        if client is None or sharers is None or client._closed or client._exit_closed:
            sharers = weakref.WeakSet()
            client = Client(endpoint, on_error=_report_to_sharers(sharers), **options)
            _shared[key] = client
            _sharers[client] = sharers
        sharers.add(handler)
    _keep(key, client)
    return client


def leave_client(handler: 'LogfunnelHandler', client: Client) -> bool:
    """``handler``'s close(): True when other handlers share ``client`` (``handler`` leaves it
    to them), False when it is the last one (it stays a sharer, so that the close's reports go
    through its handleError), or not a sharer: its caller closes the client, which no handler
    made from now on takes."""
    with _sharing:
        sharers = _sharers.get(client)
        if sharers is not None and any(other is not handler for other in sharers):
            sharers.discard(handler)
            return True
        _sharers.pop(client, None)
        return False


def _report_to_sharers(sharers: 'weakref.WeakSet[LogfunnelHandler]') -> Callable[[LogfunnelError], None]:
    """A shared Client's errors: said once, through one of its handlers' handleError."""
    def on_error(err: LogfunnelError) -> None:
        for handler in list(sharers):
            handler._client_error(err)
            return
        report(err)  # its handlers closed or dropped, the client still sending
    return on_error


def _keep(key: Tuple[Any, ...], client: Client) -> None:
    global _keeper
    with _keeping:
        _kept[key] = (client, time.monotonic() + KEEP_S)
        # A uWSGI master keeps it for its life, with no thread: one started there may hang the
        # workers forked from it (see _forks); each worker keeps its own (_forked).
        if _keeper is None and not _forks.no_threads_here():
            try:
                _keeper = _native.Thread(_let_go, 'logfunnel-keep')
                _keeper.start()
            except RuntimeError:  # interpreter shutdown: no new threads; the exit hooks close it
                _keeper = None
        _keeping.notify()


def _let_go() -> None:
    """Lets each kept Client go KEEP_S after the last handler made for it (outside the lock: its
    release may run here, when no handler holds it); ends once none is kept."""
    global _keeper
    while True:
        with _keeping:
            if not _kept:
                _keeper = None
                return
            now = time.monotonic()
            gone = [_kept.pop(key)[0] for key in [key for key, (_, until) in _kept.items() if until <= now]]
            if not gone:
                _keeping.wait(min(until for _, until in _kept.values()) - now)
                continue
        del gone


def _forked() -> None:
    """A forked child keeps none of its parent's: each of its handlers makes a Client of its own
    pid, and its keeper thread is not there."""
    global _keeper, _keeping, _sharing
    _kept.clear()
    _keeping = _native.Condition()
    _keeper = None
    _sharing = _native.Lock()


_forks.after_in_child(_forked)
