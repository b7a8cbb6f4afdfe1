"""What a forked child runs before it logs, and the one server that forks without telling Python.

Every module of the package that keeps per-process state (threads, sockets, locks) gives its
reset to ``after_in_child``; they run in the order given, once per child. A fork through
``os.fork()`` (multiprocessing, gunicorn, Celery) runs them from ``os.register_at_fork``.
uWSGI forks its workers from C and, by default (2.0: without ``--py-call-osafterfork`` or
``--py-call-uwsgi-fork-hooks``), never calls ``PyOS_AfterFork_Child``: no hook of
``os.register_at_fork`` runs there. Its workers then took the master's producer as their own:
its pid (so the exit hooks skipped it, and records without a receipt at a worker's end were
lost), and, when the master had logged, its sender thread, absent in the worker (records queued
for it were never sent). uWSGI calls ``uwsgi.post_fork_hook`` in each worker instead
(``uwsgidecorators.postfork`` chains onto it); the resets are given to it too.

uWSGI also forks while threads of the master wait for the GIL, whose state the worker then
inherits: the worker hangs at its first GIL release (glibc's condition variable still counts a
waiter that is not there), or, with ``--enable-threads``, as it starts (unbit/uwsgi#1149,
#1369). So no thread of ours starts in a uWSGI master (``no_threads_here``): what it logs goes
to the spool as it is logged.
"""

from __future__ import annotations

import logging  # noqa: F401 - its own fork hook (new handler locks) must run before ours
import os
import sys
import threading
from typing import Any, Callable, List, Optional

_hooks: List[Callable[[], None]] = []
_pid = os.getpid()  # the process the state is for: the resets run once in each child
_checking = threading.Lock()  # check(): one thread runs the resets


def after_in_child(hook: Callable[[], None]) -> None:
    """Runs ``hook`` in each forked child, before anything of the package runs there."""
    _hooks.append(hook)


def _child() -> None:
    global _pid
    if _pid == os.getpid():
        return  # both paths ran (uWSGI with --py-call-osafterfork): once is enough
    _pid = os.getpid()
    for hook in _hooks:
        hook()


def check() -> None:
    """Runs the resets now if this process is a child that no fork hook told of."""
    if _pid != os.getpid():
        with _checking:
            _child()


def uwsgi_module() -> Optional[Any]:
    """uWSGI's embedded module in a process that uWSGI runs, else None (it cannot be imported elsewhere)."""
    return sys.modules.get('uwsgi')


def no_threads_here() -> bool:
    """True in a uWSGI master (worker id 0) that loaded the application and forks its workers
    from it (the default, without ``--lazy-apps``): a thread started here may hang them (see the
    module's docstring). A mule or a spooler (forked from the master) has an id of its own."""
    uwsgi = uwsgi_module()
    if uwsgi is None:
        return False
    try:
        return uwsgi.worker_id() == 0 and uwsgi.mule_id() == 0 and not getattr(uwsgi, 'i_am_the_spooler', lambda: 0)()
    except Exception:  # noqa: BLE001 - an embedded module of another shape: as anywhere else
        return False


def say_no_threads() -> bool:
    """True once in each uWSGI worker started without Python threads (no ``--enable-threads``,
    no ``--threads``): uWSGI keeps the GIL while it waits for the next request, so the sender
    thread runs only while a request runs Python (errors.NoThreads)."""
    global _said_no_threads
    uwsgi = uwsgi_module()
    if uwsgi is None or getattr(uwsgi, 'has_threads', 1) or _said_no_threads == os.getpid():
        return False
    _said_no_threads = os.getpid()
    return True


_said_no_threads = -1


def _install_uwsgi_hook() -> None:
    uwsgi = uwsgi_module()
    if uwsgi is None:
        return
    try:
        import uwsgidecorators  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - not installed (Debian: python3-uwsgidecorators)
        uwsgidecorators = None
    if uwsgidecorators is not None:
        # Its chain replaces uwsgi.post_fork_hook when first imported: the application's
        # @postfork functions and ours all run.
        uwsgidecorators.postfork(_child)
        return
    previous = getattr(uwsgi, 'post_fork_hook', None)

    def hook() -> None:
        _child()
        if previous is not None:
            previous()

    uwsgi.post_fork_hook = hook


os.register_at_fork(after_in_child=_child)
_install_uwsgi_hook()
