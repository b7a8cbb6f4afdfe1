"""The one ZeroMQ context of a process, shared by every producer's sockets (libzmq's advice: one
context per process). A context of its own per producer gave each handler two more threads
(libzmq's I/O thread and reaper) and five more descriptors (their epoll and eventfd
descriptors), and, worse, started those threads with each new handler: libzmq cannot fail
that start (src/epoll.cpp's ``errno_assert``), so a handler made while the process was near
its RLIMIT_NOFILE (handlers made per request, each alive until its records are confirmed)
aborted the whole process (SIGABRT, "Too many open files (src/epoll.cpp:65)"), and what every
handler held was lost. The shared context starts its threads once, with descriptors set aside
for them; what a producer makes later (sockets, connections) fails with EMFILE, which the
sender waits out (``_sender.NO_FD_ERRNOS``)."""

from __future__ import annotations

import errno
import itertools
import os
from typing import List, Optional, Tuple

import zmq

from . import _forks, _native

# Descriptors libzmq takes when a context starts (with its first socket): the context's term
# mailbox (an eventfd, at zmq_ctx_new), the reaper's and the I/O thread's mailboxes and epoll
# descriptors, the first socket's mailbox. They are checked free just before.
START_DESCRIPTORS = 6
# Sockets the context may hold (ZMQ_MAX_SOCKETS; libzmq's default 1023). A producer's session
# holds six (PUSH, SUB, each one's monitor PAIR and ours at its other end): the default would
# refuse the 171st handler alive at once. Each socket also takes a descriptor of its own (its
# mailbox), so the process's RLIMIT_NOFILE is met long before this; past either, the socket
# fails with EMFILE, waited out like any lack of descriptors. The context's slot table costs
# 12 bytes a socket (98 KiB).
MAX_SOCKETS = 8192

# (pid, context): a forked child makes its own. Never terminated by us: each pyzmq socket holds
# its context, so it is collected (and terminated by pyzmq) only once no socket of it is left.
_context: Optional[Tuple[int, zmq.Context]] = None
_inherited: List[zmq.Context] = []  # the contexts of the processes this one was forked from
_lock = _native.Lock()
_monitor_ids = itertools.count()


def shared_context() -> zmq.Context:
    """This process's context, made and started at the first call in the process. Raises
    ZMQError (EMFILE, ENFILE) when the descriptors its threads need are not free: no
    thread of libzmq's is started then, and the next call tries again."""
    current = _context
    if current is not None and current[0] == os.getpid():
        return current[1]
    with _lock:
        return _make()


def _make() -> zmq.Context:
    global _context
    current = _context
    pid = os.getpid()
    if current is not None and current[0] == pid:
        return current[1]
    _reserve_start_descriptors()
    ctx = zmq.Context()
    try:
        ctx.set(zmq.MAX_SOCKETS, MAX_SOCKETS)
        ctx.socket(zmq.PAIR).close(0)  # starts the reaper and the I/O thread now, with the descriptors just checked
    except BaseException:
        ctx.term()  # no socket open: returns at once (collected unterminated, pyzmq warns)
        raise
    if current is not None:
        # The parent's, in a forked child: kept, not collected here, where pyzmq would say
        # 'ResourceWarning: Unclosed context' (python3 -X dev) of a context the child cannot end.
        _inherited.append(current[1])
    _context = (pid, ctx)
    return ctx


def _reserve_start_descriptors() -> None:
    """Raises ZMQError(EMFILE) unless START_DESCRIPTORS descriptors are free now (opened, then
    closed again, for the context to take)."""
    taken: List[int] = []
    try:
        for _ in range(START_DESCRIPTORS):
            taken.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    except OSError as err:
        if err.errno in (errno.EMFILE, errno.ENFILE):
            raise zmq.ZMQError(err.errno) from None  # as libzmq says it where it can fail without aborting
        raise
    finally:
        for fd in taken:
            os.close(fd)


def monitor_address() -> str:
    """A new inproc address for a socket monitor. pyzmq names one after the socket's descriptor,
    which a socket made after another was closed may reuse while the closed one's monitor is
    still bound in the shared context (libzmq's reaper unbinds it later): EADDRINUSE."""
    return 'inproc://logfunnel-monitor-%d' % next(_monitor_ids)


def _forked() -> None:
    global _lock
    _lock = _native.Lock()  # held by a thread of the parent at the fork, it would stay held here


_forks.after_in_child(_forked)
