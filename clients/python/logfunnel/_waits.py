"""A Condition wait that a raising signal handler cannot leave with its lock released."""
from __future__ import annotations

from typing import Any, Optional


def wait_holding(changed: Any, lock: Any, timeout: Optional[float]) -> bool:
    """``changed.wait(timeout)``, with ``lock`` (the Condition's RLock, held once by the caller)
    held again however the wait ends. A signal handler that raises (Ctrl-C's KeyboardInterrupt)
    right after Condition.wait() has released the lock, before its ``try`` that takes it back,
    leaves it released (CPython's threading.Condition.wait); the caller's ``with lock:`` then
    ended with ``RuntimeError: cannot release un-acquired lock`` in place of the
    KeyboardInterrupt, and close() or the exit hook reported that instead of spooling as for
    Ctrl-C (tests/test_spool.py, where='exit', seen in a full run under load)."""
    try:
        return changed.wait(timeout)
    except BaseException:
        if not lock._is_owned():  # type: ignore[attr-defined]  # RLock's own check, C and Python alike
            lock.acquire()
        raise
