"""Spooling at the ends of a process: interpreter exit (atexit), multiprocessing's finalizers
(pool workers end in os._exit(), where atexit does not run) and SIGTERM (Pool.terminate(),
gunicorn's graceful shutdown), with a handler installed only where the default one is in place.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import weakref
from typing import Any, Callable, List

_clients: 'weakref.WeakSet[Any]' = weakref.WeakSet()
_installed_pid = -1
_lock = threading.Lock()


def register(client: Any) -> None:
    """Spools ``client``'s held records if this process gets SIGTERM (once installed)."""
    _clients.add(client)
    install_sigterm()


def install_sigterm() -> None:
    """Installs the SIGTERM handler in this process if SIGTERM has its default disposition and
    this is the main thread (signal.signal works only there); otherwise leaves it alone."""
    global _installed_pid
    if _installed_pid == os.getpid() or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            _installed_pid = os.getpid()  # inherited through fork
            return
        if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):
        return
    _installed_pid = os.getpid()


def _on_sigterm(signum: int, _frame: Any) -> None:
    """Spools what every client of this process holds without a receipt, then ends as the
    default disposition would: restores SIG_DFL and sends the signal again."""
    pid = os.getpid()
    clients: List[Any] = [c for c in list(_clients) if c.pid == pid]
    for client in clients:
        client.abandon('SIGTERM')
    signal.signal(signum, signal.SIG_DFL)
    os.kill(pid, signum)


def at_exit(fn: Callable[[], None]) -> None:
    atexit.register(fn)
