"""Spooling at the ends of a process: interpreter exit (atexit), multiprocessing's finalizers
(pool workers end in os._exit(), where atexit does not run) and the signals whose default action
ends the process (SIGTERM from Pool.terminate() or a service manager, SIGHUP from a closed
terminal or session, ...), with a handler installed only where the default one is in place.

Every hook is registered once per process and finds the producers through a weak set, so a
producer dropped without close() is not kept alive by a hook, and nothing accumulates per
producer created and dropped.
"""

from __future__ import annotations

import atexit
import logging  # noqa: F401 - its exit hook (logging.shutdown, which flushes every handler) must run after ours
import multiprocessing.util
import os
import signal
import threading
import weakref
from typing import Any, List

# The signals whose default action ends the process, as the Node producer's (signal-exit's list
# on Linux), without SIGABRT, SIGTRAP and SIGSYS (abort(), a debugger and seccomp raise those, and
# a Python handler could not run before the process ends) and SIGUSR2 (left to the application
# and to tools that claim it, such as faulthandler.register). SIGINT counts only where an application
# set it to SIG_DFL (Python's own handler raises KeyboardInterrupt, and atexit then runs).
FATAL_SIGNALS = tuple(getattr(signal, name) for name in (
    'SIGTERM', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGALRM', 'SIGVTALRM', 'SIGXCPU', 'SIGXFSZ',
    'SIGPWR', 'SIGIO', 'SIGSTKFLT') if hasattr(signal, name))

_clients: 'weakref.WeakSet[Any]' = weakref.WeakSet()
_installed_pid = -1
_finalizer_pid = -1


def register(client: Any) -> None:
    """Closes ``client`` at exit, resets it after a fork, and spools its held records if this
    process gets SIGTERM (once installed). Holds it weakly."""
    _clients.add(client)
    install_signal_handlers()


def live_clients() -> List[Any]:
    """The producers of this process that are still alive (sending, or not yet collected)."""
    pid = os.getpid()
    return [c for c in list(_clients) if c.pid == pid]


def install_finalizer() -> None:
    """multiprocessing's children end in os._exit(): atexit does not run there, its finalizers
    do, and a child clears the finalizers it inherited, so register in the process that sends."""
    global _finalizer_pid
    if _finalizer_pid != os.getpid():
        _finalizer_pid = os.getpid()
        multiprocessing.util.Finalize(None, _close_all, exitpriority=100)


def install_signal_handlers() -> None:
    """Installs the handler of FATAL_SIGNALS in this process, for each signal that still has its
    default disposition, if this is the main thread (signal.signal works only there); any other
    handler is left alone."""
    global _installed_pid
    if _installed_pid == os.getpid() or threading.current_thread() is not threading.main_thread():
        return
    _installed_pid = os.getpid()
    for signum in FATAL_SIGNALS:
        try:
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, _on_fatal_signal)
        except (ValueError, OSError):
            pass


def _on_fatal_signal(signum: int, _frame: Any) -> None:
    """Spools what every client of this process holds without a receipt, then ends as the
    default disposition would: restores SIG_DFL and sends the signal again."""
    for client in live_clients():
        client.abandon(signal.Signals(signum).name)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _close_all() -> None:
    for client in live_clients():
        client.close_or_report(at_exit=True)


def _forked() -> None:
    """A forked child starts every producer afresh: the parent's threads and sockets are not its own."""
    for client in list(_clients):
        client.reset()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_forked)
