"""Real OS threads, locks and waits for logfunnel's own threads (the sender, the keeper of shared
clients, the signal watcher, a dropped Client's closer, the orphan watcher) and for every lock
and condition they share with the logging side, whatever gevent or eventlet monkey-patched,
before ``import logfunnel`` or after it.

Under ``gevent.monkey.patch_all()`` (gunicorn's ``-k gevent`` worker patches in each worker,
after the fork) ``threading.Thread`` starts a greenlet, and threading's locks, conditions and
``time.sleep`` are gevent's. The sender was then a greenlet of the worker's one OS thread, and
its ZeroMQ poll (a blocking C call, up to receipt_timeout: 5 s) held the whole hub: the worker
served a request now and then, its heartbeat stopped, and gunicorn killed it (WORKER TIMEOUT,
SIGKILL) every 30 s, with what it held (4 gevent workers: 4 records of 20 requests in a
minute, each worker killed twice). A real thread polls without holding the hub.

The originals come from ``gevent.monkey.get_original`` when gevent's monkey module is loaded
(it gives the original whether or not that module was patched yet), from
``eventlet.patcher.original`` when eventlet patched it, else from the module as it is when this
one is imported: a patch made later (gunicorn's worker after ``--preload``) does not change
what was taken. Neither library is imported here where the application has not.

A greenlet that waits on one of these locks (a log call with on_full 'block' waiting for room,
flush(), close()) blocks every greenlet of its thread for that wait: each such wait is bounded
(block_timeout, close_timeout), and a log call otherwise only takes the lock for as long as the
sender holds it (a few microseconds, a spool write at most). Never hold one of these locks over
a call that may switch greenlets: the lock belongs to the OS thread, so another greenlet of that
thread would take it as if re-entering.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable, List, Optional, Sequence, Tuple

from . import _forks


def _originals(module: str, green_name: str, names: Sequence[str]) -> List[Any]:
    """``names`` of ``module`` as they were before gevent or eventlet patched them."""
    monkey = sys.modules.get('gevent.monkey')
    if monkey is not None:
        return [monkey.get_original(module, name) for name in names]
    patcher = sys.modules.get('eventlet.patcher')
    if patcher is not None and patcher.is_monkey_patched(green_name):
        original = patcher.original(module)
        return [getattr(original, name) for name in names]
    mod = __import__(module)
    return [getattr(mod, name) for name in names]


_start_new_thread, allocate_lock, get_ident, _RLock, _get_native_id = _originals(
    '_thread', 'thread', ('start_new_thread', 'allocate_lock', 'get_ident', 'RLock', 'get_native_id'))
sleep, = _originals('time', 'time', ('sleep',))
read, write = _originals('os', 'os', ('read', 'write'))

Lock = allocate_lock


class RLock(_RLock):  # type: ignore[misc,valid-type]
    """_thread.RLock (in C: its acquire and release cost what they did), equal to nothing, itself
    included. eventlet.monkey_patch() swaps each RLock made before it for a Python one whose owner
    is a greenlet (patcher._fix_py3_rlock), in the attributes of the objects it finds by
    ``value == lock``, which reach it only where an object's attributes are not held in a dict
    of its own: the producer's lock stayed real and its condition's was swapped (close() at the
    exit then raised 'cannot notify on un-acquired lock', and its records were not sent)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = _RLock.__hash__


class Condition:
    """threading.Condition over a real lock (a real RLock by default), with real locks for its
    waiters: threading.Condition takes its waiters' locks from the threading module, which gevent
    and eventlet patch."""

    def __init__(self, lock: Any = None) -> None:
        # Only this attribute holds the lock (no bound methods of it): eventlet.monkey_patch()
        # swaps each RLock it finds in an object's attributes for a Python one over a real lock,
        # owned by a greenlet (patcher._fix_py3_rlock), and the two must stay the same lock.
        self._lock = RLock() if lock is None else lock
        self._waiters: List[Any] = []

    def acquire(self, *args: Any) -> bool:
        return bool(self._lock.acquire(*args))

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return bool(self._lock.__enter__())

    def __exit__(self, *args: Any) -> None:
        self._lock.__exit__(*args)

    def _is_owned(self) -> bool:
        return bool(self._lock._is_owned())

    def _release_save(self) -> Any:
        return self._lock._release_save()

    def _acquire_restore(self, state: Any) -> None:
        self._lock._acquire_restore(state)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """As threading.Condition.wait (the lock held by the caller)."""
        if not self._is_owned():
            raise RuntimeError('cannot wait on un-acquired lock')
        waiter = allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)
        saved = self._release_save()
        gotit = False
        try:
            if timeout is None:
                waiter.acquire()
                gotit = True
            elif timeout > 0:
                gotit = waiter.acquire(True, timeout)
            else:
                gotit = waiter.acquire(False)
            return gotit
        finally:
            self._acquire_restore(saved)
            if not gotit:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass

    def notify(self, n: int = 1) -> None:
        if not self._is_owned():
            raise RuntimeError('cannot notify on un-acquired lock')
        for waiter in self._waiters[:n]:
            waiter.release()
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass

    def notify_all(self) -> None:
        self.notify(len(self._waiters))


class Thread:
    """A daemon OS thread running ``target(*args)``, with what threading.Thread gave our callers:
    ``start()`` (RuntimeError when no thread can be made), ``is_alive()``, ``join(timeout)``,
    ``name``. Not in threading.enumerate(): nothing waits for it at the end of the process."""

    def __init__(self, target: Callable[..., Any], name: str, args: Tuple[Any, ...] = ()) -> None:
        self.name = name
        self._target = target
        self._args = args
        self._started = False
        self._done = allocate_lock()  # held while the target runs

    def start(self) -> None:
        """Returns once the thread runs, as threading.Thread.start() does: the caller's wait lets
        it take the GIL. Where nothing else lets go of the GIL until the process ends (a uWSGI
        worker without --enable-threads, idle in C), a start that returned at once left the
        sender thread not yet begun, with the signals it blocks as it begins still open to it:
        the test's record of one such worker was lost at a reload (1 of 2 full runs)."""
        self._done.acquire()
        begun = allocate_lock()
        begun.acquire()
        try:
            _start_new_thread(self._bootstrap, (begun,))
        except BaseException:
            self._done.release()
            raise
        begun.acquire()
        self._started = True

    def _bootstrap(self, begun: Any) -> None:
        begun.release()
        try:
            self._target(*self._args)
        except BaseException as err:  # noqa: BLE001 - as threading.excepthook would say it
            try:
                sys.stderr.write('logfunnel: thread %s ended by %s: %s\n' % (self.name, type(err).__name__, err))
            except Exception:  # noqa: BLE001 - stderr gone
                pass
        finally:
            self._done.release()

    def is_alive(self) -> bool:
        if not self._started or not self._done.acquire(False):
            return self._started
        self._done.release()
        return False

    def join(self, timeout: Optional[float] = None) -> None:
        if not self._started:
            return
        if self._done.acquire(True, -1 if timeout is None else max(0.0, timeout)):
            self._done.release()


# The main OS thread's ident (the one where Python runs signal handlers). threading's says a
# greenlet's once gevent patched it, so it is taken here, then in each forked child (the thread
# that forked is its main thread).
def _main_ident() -> int:
    main = threading.main_thread()
    if threading.current_thread() is main:
        return int(get_ident())
    # Imported in another greenlet of the main OS thread (gevent or eventlet patched threading
    # first): the kernel's thread id says it is the main one. Before, threading's word was taken,
    # a greenlet's id under gevent: no thread was the main one, the fatal signals' handler was
    # never installed, and a SIGTERM lost what was held (100 of 100 records gathered).
    if getattr(main, 'native_id', None) is not None and _get_native_id() == main.native_id:
        return int(get_ident())
    return int(main.ident or 0)  # imported from another thread: threading's word


main_ident = _main_ident()


def _forked() -> None:
    global main_ident
    main_ident = int(get_ident())


_forks.after_in_child(_forked)


def in_main_thread() -> bool:
    """True in the main OS thread, in whichever greenlet."""
    return bool(get_ident() == main_ident)
