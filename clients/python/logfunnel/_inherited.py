"""What a forked child closes of its parent's sender: the connections to the writer that the
parent's libzmq I/O thread opened. The child inherits them with every other descriptor, and
while it holds them they stay open after the parent closes its own: the writer counts the
parent's producer as connected for the child's whole life (a daemon that forked off keeps
them for ever), and a stop of the writer waits out its drain for them. The child never uses
them (libzmq forbids using a context across fork; a child sends through a context of its own),
so they are closed as raw descriptors, found by their peer: the writer's two endpoints."""

from __future__ import annotations

import _socket
import os
import socket
import stat
from typing import FrozenSet, Union

from .endpoint import parse_endpoint

Peer = Union[str, tuple]  # an ipc path, or (address, port)


def writer_peers(endpoint: str, receipt_endpoint: str) -> FrozenSet[Peer]:
    """The peer names a connection to the writer has (getpeername(2)): the ipc socket paths, or
    the tcp addresses the hosts resolve to. Called by the sender before it connects; a host that
    does not resolve adds nothing (a child then keeps those connections, as before)."""
    peers = set()
    for ep in (endpoint, receipt_endpoint):
        try:
            transport, where, port = parse_endpoint(ep)
        except ValueError:
            continue
        if transport == 'ipc':
            peers.add(where)
            continue
        try:
            infos = socket.getaddrinfo(where.strip('[]'), port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            continue
        for info in infos:
            peers.add(tuple(info[4][:2]))
    return frozenset(peers)


def close_connections_to(peers: FrozenSet[Peer]) -> int:
    """Closes every socket of this process whose peer is in ``peers``; returns how many. Only in
    a forked child, before it makes any connection of its own."""
    if not peers:
        return 0
    fd_dir = '/proc/self/fd' if os.path.isdir('/proc/self/fd') else '/dev/fd'
    try:
        fds = [int(name) for name in os.listdir(fd_dir)]
    except (OSError, ValueError):
        return 0
    closed = 0
    for fd in fds:
        if _peer(fd) in peers:
            try:
                os.close(fd)
                closed += 1
            except OSError:
                pass
    return closed


def _peer(fd: int) -> object:
    """The peer name of socket ``fd`` in the form of writer_peers(); None for anything else."""
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return None
        sock = _socket.socket(fileno=fd)  # not gevent's or eventlet's socket.socket, which would want a hub
    except (OSError, ValueError):
        return None
    try:
        name = sock.getpeername()
    except OSError:
        return None
    finally:
        sock.detach()  # the descriptor stays open: only the caller closes it
    if isinstance(name, tuple):
        return tuple(name[:2])
    return name if isinstance(name, str) else None
