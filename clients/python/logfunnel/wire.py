"""The wire side of a producer (docs/protocol.md): the batch header, receipts, cutting queued
lines into batches, and the two sockets."""

from __future__ import annotations

import _socket
import bisect
import itertools
import json
import os
import socket
import struct
import time
from typing import Dict, List, Optional, Tuple

import zmq
from zmq.utils.monitor import parse_monitor_message

from ._context import monitor_address
from .errors import ConnectError, HandshakeError, LogfunnelError

PROTOCOL_VERSION = 1
HEADER = struct.Struct('>2sBBIQQ16s')  # magic, version, flags, count, seq, base, producer id
WELCOME = b'\xff' * 8                  # receipt "nothing of yours written yet"
GAP_FLAG = b'G'                        # third receipt frame: a batch of yours skipped ahead
TOO_LARGE_FLAG = struct.Struct('>cI')  # third receipt frame b'L' + the writer's max_frame_bytes: a batch was over it
# A plain connect's wait when telling why nothing accepted a tcp connection (s; the Node producer's PROBE_TIMEOUT_MS).
PROBE_TIMEOUT = 2.0
GAP_REWIND_INTERVAL = 0.25             # as the Node producer: batches in flight are refused in turn
MONITOR_EVENTS = (zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                  | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_CONNECT_RETRIED)
# A close that ends before connect_timeout reports the writer unreached on evidence only (a refused
# connect, a failed handshake) or after this long without a handshake: on a loaded machine a
# writer that is there can take longer than spool_after to complete one (HandshakeWatch.evident).
UNREACHED_AT_CLOSE_AFTER = 1.0
# How often a close asks again whether a refused ipc connect met a full backlog (s; HandshakeWatch.backlog_full).
BACKLOG_PROBE_INTERVAL = 0.25
# Why a connection accepted and still open had no handshake (the Node producer's words).
NO_HANDSHAKE = 'no ZMTP handshake completed (a writer stopped or too busy to answer, or not a logfunnel writer)'
# The writer refused this producer's CURVE key (the Node producer's words).
CURVE_DENIED = ("the writer refused the CURVE handshake: check curve_server_key, and that this producer's public key "
                "is in the writer's curveAllowedKeys, or the writer is at its connection cap (it then says "
                "connections-refused on its stderr)")
# The receipt connection's monitor (see _liveness): up once its handshake completes, down when it closes.
RECEIPT_MONITOR_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
# The writer's ZAP answer to a listed key it has no room for now (writer/zap-handler.ts STATUS_FULL):
# libzmq sends ERROR "500", closes, and does not dial that connection again; the sender rebuilds
# its data socket after CAP_REDIAL_DELAY s, doubling up to CAP_REDIAL_MAX_DELAY s, back to the
# first after a handshake (as the Node producer's reconnect: producer/zmtp/socket.ts, 50 ms to
# 1 s; libzmq's own ZMQ_RECONNECT_IVL is 100 ms). A key not listed is answered 400: not retried.
ZAP_STATUS_FULL = 500
CAP_REDIAL_DELAY = 0.1
CAP_REDIAL_MAX_DELAY = 1.0

Curve = Tuple[str, str, str]  # the writer's public key, ours, our secret (Z85)


def load_curve_keys(curve_key_file: Optional[str]) -> Dict[str, str]:
    """The key pair of a ``logfunnel keygen`` JSON file, or {} without one."""
    if curve_key_file is None:
        return {}
    with open(curve_key_file, encoding='utf-8') as f:
        keys = json.load(f)
    return {'public': keys['publicKey'], 'secret': keys['secretKey']}


def open_sockets(ctx: zmq.Context, endpoint: str, receipt_endpoint: str, producer_id: bytes,
                 curve: Optional[Curve], send_high_water_mark: int,
                 heartbeat: Optional[Tuple[int, int]]) -> Tuple[zmq.Socket, zmq.Socket, zmq.Socket, zmq.Socket]:
    """PUSH to the writer, SUB to this producer's receipts, and each one's monitor.
    ``heartbeat``: (ZMQ_HEARTBEAT_IVL, ZMQ_HEARTBEAT_TIMEOUT) in ms for the SUB socket (see
    _liveness), or None."""
    push, monitor = open_push(ctx, endpoint, curve, send_high_water_mark)
    made: List[zmq.Socket] = [push, monitor]
    try:
        sub = ctx.socket(zmq.SUB)
        made.append(sub)
        _set_common(sub, curve)
        if heartbeat is not None:
            sub.setsockopt(zmq.HEARTBEAT_IVL, heartbeat[0])
            sub.setsockopt(zmq.HEARTBEAT_TIMEOUT, heartbeat[1])
        receipts = sub.get_monitor_socket(RECEIPT_MONITOR_EVENTS, monitor_address())
        made.append(receipts)
        sub.setsockopt(zmq.SUBSCRIBE, producer_id)
        sub.connect(receipt_endpoint)
    except BaseException:
        # The context is the process's (shared_context): only this producer's sockets go.
        for sock in made:
            sock.close(0)
        raise
    return push, sub, monitor, receipts


def open_push(ctx: zmq.Context, endpoint: str, curve: Optional[Curve],
              send_high_water_mark: int) -> Tuple[zmq.Socket, zmq.Socket]:
    """The PUSH socket to the writer, connected, and its monitor (at a session's start, and
    again after the writer refused it at its connection cap: see ZAP_STATUS_FULL)."""
    made: List[zmq.Socket] = []
    try:
        push = ctx.socket(zmq.PUSH)
        made.append(push)
        _set_common(push, curve)
        push.setsockopt(zmq.SNDHWM, send_high_water_mark)
        monitor = push.get_monitor_socket(MONITOR_EVENTS, monitor_address())
        made.append(monitor)
        push.connect(endpoint)
    except BaseException:
        for sock in made:
            sock.close(0)
        raise
    return push, monitor


def close_push(push: zmq.Socket, monitor: zmq.Socket) -> None:
    """Closes what open_push() made, dropping what libzmq still queued."""
    push.disable_monitor()
    monitor.close(0)
    push.close(0)


def _set_common(sock: zmq.Socket, curve: Optional[Curve]) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        sock.curve_serverkey = curve[0].encode()
        sock.curve_publickey = curve[1].encode()
        sock.curve_secretkey = curve[2].encode()


def cut_batches(lines: List[bytes], total: int, limit: int) -> List[Tuple[int, bytes]]:
    """``lines`` (``total`` bytes) as batches of at most ``limit`` bytes, (count, payload) each, one
    join per batch; the cuts come from the running sum of the lines' lengths (bisect), so no
    Python code runs per line and no byte is scanned; a line longer than ``limit`` is a batch of
    its own."""
    if total <= limit:
        return [(len(lines), b''.join(lines))]
    ends = list(itertools.accumulate(map(len, lines)))
    batches = []
    start, done = 0, 0
    while start < len(lines):
        stop = max(start + 1, bisect.bisect_right(ends, done + limit, start))
        batches.append((stop - start, b''.join(lines[start:stop])))
        done, start = ends[stop - 1], stop
    return batches


def too_large_limit(frames: List[bytes], producer_id: bytes) -> Optional[int]:
    """The writer's max_frame_bytes when the receipt says a batch of ours was over it, else None."""
    if len(frames) < 3 or frames[0] != producer_id or len(frames[2]) != TOO_LARGE_FLAG.size:
        return None
    tag, limit = TOO_LARGE_FLAG.unpack(frames[2])
    return limit if tag == b'L' and limit > 0 else None


def decode_receipt(frames: List[bytes], producer_id: bytes) -> Tuple[Optional[int], bool]:
    """(highest batch written, or None for a welcome or a message not ours; the gap flag)."""
    if len(frames) < 2 or frames[0] != producer_id or len(frames[1]) != 8:
        return None, False
    gap = len(frames) > 2 and frames[2] == GAP_FLAG
    if frames[1] == WELCOME:
        return None, gap
    (written,) = struct.unpack('>Q', frames[1])
    return written, gap


def _ipc_forbidden(path: str) -> bool:
    """The socket at ``path`` is there but not this user's to connect to (EACCES: no write
    permission on it, or no search permission on a directory above it)."""
    try:
        os.stat(path)
    except PermissionError:
        return True
    except OSError:
        return False
    return not os.access(path, os.W_OK)


def _ipc_backlog_full(path: str) -> bool:
    """A plain non-blocking connect to ``path`` is refused with EAGAIN: a listener is there, with
    as many connections waiting as its backlog holds. One that succeeds is closed at once."""
    # _socket's: socket.socket may be gevent's or eventlet's, which would make a hub in the sender thread.
    probe = _socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.setblocking(False)
        probe.connect(path)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        probe.close()
    return False


class HandshakeWatch:
    """Follows the PUSH socket's monitor until a ZMTP handshake completes; past ``timeout`` s
    without one, ``overdue()`` gives the error to report, once: LOGFUNNEL_ERR_CONNECT when
    nothing accepted the connection, else LOGFUNNEL_ERR_HANDSHAKE with what failed."""

    def __init__(self, endpoint: str, timeout: float, curve: bool) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.curve = curve
        self.started = time.monotonic()
        self.connected = self.handshaken = self.reported = False
        self.refused = False            # a connect attempt failed (libzmq retries it): nothing listens
        self.denied = False             # the writer refused this producer's CURVE key (ZAP: not in its allowed keys)
        self.full = False               # the writer's ZAP answered 500 (at its connection cap) since the last dial
        self.failure = ''
        self.up = False                 # a handshake completed and its connection is still open
        self._backlog_probed: Optional[Tuple[float, bool]] = None  # (when, backlog_full()'s answer)

    def read(self, monitor: zmq.Socket) -> None:
        """Takes every event the monitor holds."""
        while True:
            try:
                event = parse_monitor_message(monitor.recv_multipart(flags=zmq.NOBLOCK))
            except zmq.Again:
                return
            if event['event'] == zmq.EVENT_CONNECTED:
                self.connected = True
            elif event['event'] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.handshaken = self.up = True
                self.full = False
            elif event['event'] == zmq.EVENT_CONNECT_RETRIED:
                self.refused = True
            elif event['event'] == zmq.EVENT_DISCONNECTED:
                self.up = False
                if not self.handshaken and not self.failure:
                    self.failure = 'the connection closed before a ZMTP handshake (%s)' % (
                        'CURVE keys?' if self.curve
                        else 'the writer out of descriptors, saying connections-refused on its stderr? CURVE required? not a writer?')
            else:
                if event['event'] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:  # the writer's ZAP said no
                    # value: the ZAP status code. 500, no room now (dialed again: see
                    # ZAP_STATUS_FULL); any other (400), this key is not allowed: final.
                    if event['value'] == ZAP_STATUS_FULL:
                        self.full = True
                    else:
                        self.denied = True
                    self.failure = CURVE_DENIED
                elif not self.denied:
                    self.failure = 'handshake failed (event %d, %s)' % (event['event'], 'CURVE keys?' if self.curve else 'not a writer?')

    def overdue(self, now: float) -> Optional[LogfunnelError]:
        """The error to report now, once; None before the deadline, after a handshake, or once reported."""
        if self.handshaken or self.reported or now - self.started < self.timeout:
            return None
        self.reported = True
        if self.connected:
            return HandshakeError(self.endpoint, self.timeout, self.failure or NO_HANDSHAKE)
        return ConnectError(self.endpoint, self.timeout, self.refusal())

    def evident(self, now: float) -> bool:
        """Whether a close now may say the writer was not reached: a connect refused with none
        accepted, a handshake that failed, or UNREACHED_AT_CLOSE_AFTER s without one. Only not
        there yet (a loaded machine, a writer starting) says nothing."""
        if now - self.started >= UNREACHED_AT_CLOSE_AFTER:
            return True
        return bool(self.failure) if self.connected else self.refused or self.forbidden()

    def says_unreached(self, now: float) -> bool:
        """Whether a close's report may say the writer was not reached: as ``evident()``, except
        that over ipc a second of silence is no evidence. The kernel answers an ipc connect at once
        (accepted, refused, or no socket there), so with neither answer seen libzmq's events were
        not read yet, on a loaded machine, and "nothing accepted the connection" would be said of
        a writer that is there (the Node producer's rule too)."""
        if not self.endpoint.startswith('ipc://'):
            return self.evident(now)
        if self.refused and not self.connected and self.backlog_full(now):
            # A writer that is there, with more connections waiting than it takes (ipc refuses
            # them at once: EAGAIN), as under a burst of new producers: said, as of a connection
            # accepted and never answered, after a second only. Before, "nothing accepted the
            # connection" was said of a running writer (2 of 2,000 handlers made per request in a
            # gunicorn worker), whose records reached the file through the spool.
            return now - self.started >= UNREACHED_AT_CLOSE_AFTER
        if self.connected or self.refused:
            return self.evident(now)
        path = self.endpoint[len('ipc://'):]
        return not os.path.exists(path) or _ipc_forbidden(path)

    def backlog_full(self, now: float) -> bool:
        """Over ipc, whether a listener holds the socket with its backlog full: a plain connect
        is refused with EAGAIN (a socket nothing listens on refuses with ECONNREFUSED). Asked
        again at most every BACKLOG_PROBE_INTERVAL s."""
        if self._backlog_probed is not None and now - self._backlog_probed[0] < BACKLOG_PROBE_INTERVAL:
            return self._backlog_probed[1]
        full = _ipc_backlog_full(self.endpoint[len('ipc://'):])
        self._backlog_probed = (now, full)
        return full

    def at_close(self, now: float, spooled: int, spool_dir: str, ending: Optional[str] = None) -> LogfunnelError:
        """The error for a close that ended before ``overdue()`` had one to give, the writer never
        reached and ``spooled`` records in the spool (or records lost: LOGFUNNEL_ERR_CLOSE_TIMEOUT
        says those): the same diagnosis, over the time it had."""
        self.reported = True
        kept = 'closed before connect_timeout (%d ms)' % (self.timeout * 1000)
        if spooled:
            kept += (', with %d %s without a receipt in the spool (%s), where a writer on this endpoint takes them'
                     % (spooled, 'record' if spooled == 1 else 'records', spool_dir))
        kept += '' if ending is None else '; ' + ending
        if self.connected:
            return HandshakeError(self.endpoint, now - self.started,
                                  '%s; %s' % (self.failure or NO_HANDSHAKE, kept))
        return ConnectError(self.endpoint, now - self.started, '%s; %s' % (self.refusal(), kept))

    def forbidden(self) -> bool:
        """Whether this process may not use the endpoint, however long it is retried: the ipc
        socket or its directory is not this user's to use (nothing connected), or the writer
        refused this producer's CURVE key (no handshake ever completed; not a refusal at its
        connection cap, which the sender dials again)."""
        if self.handshaken:
            return False
        if self.denied:
            return True
        return not self.connected and self.endpoint.startswith('ipc://') and _ipc_forbidden(self.endpoint[len('ipc://'):])

    def refusal(self) -> str:
        """Why nothing accepted the connection, in the Node producer's words where it can be told
        without libzmq's errno: an ipc socket that is not there, or not this user's to use."""
        if self.endpoint.startswith('ipc://'):
            path = self.endpoint[len('ipc://'):]
            if _ipc_forbidden(path):
                return ("permission denied: this process's user may not use the socket or its directory "
                        "(see the writer's socketMode)")
            if not os.path.exists(path):
                return 'no socket at that path (is the writer running?)'
            if self.refused and self.backlog_full(time.monotonic()):
                return ('the socket takes no more connections (its backlog is full: a writer stopped, '
                        'or too busy to accept them)')
        elif self.endpoint.startswith('tcp://'):
            # libzmq's events carry no errno: a plain connect tells, as the Node producer's probe does.
            host, _, port = self.endpoint[len('tcp://'):].rpartition(':')
            host = host.strip('[]')
            try:
                socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT).close()
            except socket.gaierror:
                return 'getaddrinfo ENOTFOUND %s' % host
            except ConnectionRefusedError:
                return 'connection refused (is the writer running?)'
            except (OSError, ValueError):
                pass
        return 'nothing accepted the connection'

    def wait(self, now: float) -> float:
        """Seconds until the deadline while it matters, else infinity."""
        if self.handshaken or self.reported:
            return float('inf')
        return max(0.0, self.timeout - (now - self.started))
