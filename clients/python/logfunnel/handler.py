"""``LogfunnelHandler``: a logging.Handler writing pino-compatible JSON lines through a ``Client``."""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import socket
import sys
import traceback
import weakref
from json.encoder import encode_basestring  # json.dumps(s, ensure_ascii=False) for one str, in C
from typing import Any, Callable, Dict, Optional, Set, Tuple

from . import _forks, _sequence
from . import exit as _exit
from ._sequence import Sequence, shared_sequence
from ._sharing import leave_client, shared_client
from .client import Client
from .errors import Closed, CloseTimeout, LogfunnelError, RecordTooLarge, report, say

# Python level -> pino level number (pino: trace 10, debug 20, info 30, warn 40, error 50, fatal 60).
PINO_LEVELS = ((logging.CRITICAL, 60), (logging.ERROR, 50), (logging.WARNING, 40), (logging.INFO, 30), (logging.DEBUG, 20))

# LogRecord attributes that are not user fields (what logging itself sets).
_RECORD_ATTRS = frozenset(vars(logging.LogRecord('', 0, '', 0, '', (), None))) | {'message', 'asctime', 'taskName'}


def pino_level(levelno: int) -> int:
    """Python's level number as pino's: DEBUG 20, INFO 30, WARNING 40, ERROR 50, CRITICAL 60; below DEBUG 10 (trace)."""
    for python_level, pino in PINO_LEVELS:
        if levelno >= python_level:
            return pino
    return 10


def _fallback(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return _text(value)


def _text(value: Any) -> str:
    """``repr(value)``; one that raises is named by its type, so the record is kept."""
    try:
        return repr(value)
    except Exception as err:  # noqa: BLE001 - any __repr__ of the application's
        return '<%s object: repr() raised %s>' % (type(value).__name__, type(err).__name__)


def _jsonable(value: Any, path: Set[int]) -> Any:
    """``value`` as JSON can write it, in dicts, lists and tuples at any depth: NaN and the
    infinities as None (JSON has no such numbers, and pino, JSON.stringify, writes them as null);
    a container inside itself as '[Circular]' (pino's safe-stable-stringify writes that); a dict
    key JSON has no spelling for (a tuple, an object) as its text. ``path``: the ids of the
    containers being copied. Before, a circular value or such a key made the record refused
    (handleError), where a FileHandler keeps it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if not isinstance(value, (dict, list, tuple)):
        return value
    if id(value) in path:
        return '[Circular]'
    path.add(id(value))
    try:
        if isinstance(value, dict):
            return {_key(key): _jsonable(item, path) for key, item in value.items()}
        return [_jsonable(item, path) for item in value]
    finally:
        path.discard(id(value))


def _key(key: Any) -> Any:
    # A key is written as a string; a non-finite float key as JavaScript spells it (String(NaN)).
    if isinstance(key, float) and not math.isfinite(key):
        return 'NaN' if key != key else 'Infinity' if key > 0 else '-Infinity'
    if key is None or isinstance(key, (str, int, float)):
        return key
    return _fallback(key)


def _exception_text(exc: BaseException) -> str:
    """``str(exc)``; one whose __str__ raises is said as the traceback module says it."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - any __str__ of the application's
        return '<exception str() failed>'


def _report_to(ref: 'weakref.ref[LogfunnelHandler]') -> Callable[[LogfunnelError], None]:
    def on_error(err: LogfunnelError) -> None:
        handler = ref()
        if handler is not None:
            handler._client_error(err)
        else:  # a dropped handler's client still sending
            report(err)
    return on_error


# Every handler of this process, weakly: one fork hook for them all, nothing kept per handler.
_handlers: 'weakref.WeakSet[LogfunnelHandler]' = weakref.WeakSet()


class LogfunnelHandler(logging.Handler):
    """A logging.Handler writing one JSON object per record, with pino's fields: ``level``
    (pino's number), ``time`` (ms since the epoch), ``pid``, ``hostname``, ``name`` (the logger),
    ``msg``, then the ``extra=`` fields, ``err`` ({type, message, stack}) with exc_info, and
    ``stack_info`` with stack_info=True. Values JSON cannot write are written as text (a
    circular one as '[Circular]'): the record is kept.

    ``seq_key='seq'`` adds a counter 0, 1, 2, ... per ``pid`` written (the record's process: a
    QueueListener's records keep their worker's), so that ``logfunnel verify`` can prove nothing
    was lost or reordered; a record the handler refuses (it cannot be encoded, or it is over
    max_frame_bytes) takes no number. The handlers of a process for the same endpoint and key
    count together (_sequence.py): alive at once, made per request and dropped or closed, made
    again later (a dictConfig or fileConfig replacing the configuration). NaN and the infinities
    are written as null, as pino does.
    Client options (endpoint, close_timeout, on_full, spool_dir, curve_server_key, ...) pass
    through, so ``dictConfig`` can set them all; ``close()`` waits for the receipts, then spools
    what has none. Connect and handshake failures go through ``handleError`` once.
    """

    def __init__(self, endpoint: Optional[str] = None, level: int = logging.NOTSET, seq_key: Optional[str] = None,
                 client: Optional[Client] = None, **client_options: Any) -> None:
        super().__init__(level)
        self._left = False  # closed while other handlers still share its client
        shared = None if client is not None or 'on_error' in client_options else shared_client(self, endpoint, client_options)
        # What it shares a client by: a record logged after its close() takes one again (_reopen).
        self._share = None if shared is None else (endpoint, dict(client_options))
        if shared is not None:
            self.client = shared
        else:
            # Weakly: the client's sender thread holds on_error, and must not keep this handler alive.
            client_options.setdefault('on_error', _report_to(weakref.ref(self)))
            self.client = client or Client(endpoint, **client_options)
        self.seq_key = seq_key
        self.hostname = socket.gethostname()
        self._pid = os.getpid()
        # The seq count, the lock held over emit, and the records logged in this thread while an
        # emit runs (a signal handler's: sent after it): shared by the handlers of this process
        # for the same writer and seq_key, this one's own without a seq_key.
        self._sequence = Sequence() if seq_key is None else shared_sequence(self.client.endpoint, seq_key)
        self.lock = self._sequence.lock
        self.closed_drops = 0  # records logged after close(), not sent (reported once)
        self._levels: Dict[int, int] = {}
        # (levelno, logger name, pid) -> the line's text before `time` and between `time` and `msg`
        self._frames: Dict[Tuple[int, str, int], Tuple[str, str]] = {}
        self._seq_field = None if seq_key is None else ',%s:' % encode_basestring(seq_key)
        self._encode = json.JSONEncoder(default=_fallback, ensure_ascii=False, separators=(',', ':'),
                                        allow_nan=False).encode
        _handlers.add(self)

    @staticmethod
    def _forked() -> None:
        """A forked child counts ``seq`` from 0: it is a producer of its own. Each handler's lock
        is its sequence's new one (logging gave it one of its own in its fork hook, which runs
        before this one)."""
        _sequence.forked()
        for handler in list(_handlers):
            handler._pid, handler.closed_drops = os.getpid(), 0
            if handler.seq_key is None:
                handler._sequence.forked()
            handler.lock = handler._sequence.lock

    def format_record(self, record: logging.LogRecord) -> str:
        """The JSON line for ``record`` (without newline). With ``seq_key``, it holds the next
        seq of the record's pid, which only ``emit()`` takes (once the client has the line)."""
        pid = record.process if record.process is not None else self._pid
        return self._format(record, pid, self._sequence.seqs.get(pid, 0))

    def _format(self, record: logging.LogRecord, pid: int, seq: int) -> str:
        # A subset test walks the record's keys without building a set (the difference did).
        if record.exc_info or record.stack_info or not record.__dict__.keys() <= _RECORD_ATTRS:
            return self._format_object(record, pid, seq)
        # The common record (no extra fields, no exception) from cached text: the same line as
        # _format_object's, at a fraction of its cost (json's dict walk is most of a record's work).
        key = (record.levelno, record.name, pid)
        frame = self._frames.get(key)
        if frame is None:
            frame = self._frames[key] = self._frame(key)
        msg = record.getMessage()
        if self._seq_field is None:
            return '%s%d%s,"msg":%s}' % (frame[0], record.created * 1000, frame[1], encode_basestring(msg))
        return '%s%d%s%s%d,"msg":%s}' % (frame[0], record.created * 1000, frame[1], self._seq_field, seq, encode_basestring(msg))

    def _frame(self, key: Tuple[int, str, int]) -> Tuple[str, str]:
        levelno, name, pid = key
        if len(self._frames) >= 4096:  # loggers named per request: keep the cache bounded
            self._frames.clear()
        return ('{"level":%d,"time":' % self._level(levelno),
                ',"pid":%d,"hostname":%s,"name":%s' % (pid, encode_basestring(self.hostname), encode_basestring(name)))

    def _level(self, levelno: int) -> int:
        level = self._levels.get(levelno)
        if level is None:
            level = self._levels[levelno] = pino_level(levelno)
        return level

    def _format_object(self, record: logging.LogRecord, pid: int, seq: int) -> str:
        obj: Dict[str, Any] = {'level': self._level(record.levelno), 'time': int(record.created * 1000),
                               'pid': pid, 'hostname': self.hostname, 'name': record.name}
        if self.seq_key is not None:
            obj[self.seq_key] = seq
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in obj:
                obj[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            obj['err'] = {'type': record.exc_info[0].__name__, 'message': _exception_text(record.exc_info[1]),
                          'stack': ''.join(traceback.format_exception(*record.exc_info))}
        if record.stack_info:  # stack_info=True: the call stack, as logging's Formatter writes it
            obj['stack_info'] = record.stack_info
        obj['msg'] = record.getMessage()
        try:
            return self._encode(obj)
        except (ValueError, TypeError):  # NaN or an infinity (allow_nan=False), a circular value, a key JSON cannot write
            pass
        return self._encode(_jsonable(obj, set()))

    def handle(self, record: logging.LogRecord) -> Any:
        # A record of another process than the handler's: behind a QueueListener, or the first
        # in a child forked with no fork hook run (a uWSGI worker whose uwsgi.post_fork_hook the
        # application replaced after logfunnel set it): its state is reset first, before the
        # lock that the reset replaces is taken.
        if record.process != self._pid and record.process is not None:
            _forks.check()
        return super().handle(record)

    def emit(self, record: logging.LogRecord) -> None:
        if self._left and not self._reopen():
            self._closed_drop()
            return
        sequence = self._sequence
        if sequence.emitting:
            # Re-entered in this thread (logging holds the re-entrant lock this handler shares
            # with those of its sequence over emit): a signal handler, or an argument's __str__,
            # logged while this emit ran. Queued first, its record would precede the outer one
            # with the next seq; it follows it instead.
            sequence.deferred.append((self, record))
            return
        if sequence.deferred:
            # Left by an emit that an exception of a signal handler ended (KeyboardInterrupt):
            # logged before this record, so sent before it.
            sequence.deferred.append((self, record))
            _emit_deferred(sequence)
            return
        self._emit(record)
        if sequence.deferred:
            _emit_deferred(sequence)

    def _emit(self, record: logging.LogRecord, deferred: bool = False, again: bool = True) -> None:
        """Sends one record; ``deferred``: the first of the sequence's ``deferred``, removed here
        when an exception ends this call after the client took the line (so it is never sent
        twice). ``again``: a client found closed is taken anew once (_reopen)."""
        reopened = False
        sequence = self._sequence
        sequence.emitting = True
        try:
            pid = record.process if record.process is not None else self._pid
            client = self.client
            if self._seq_field is None:
                seq = 0
            else:
                seq = sequence.seqs.get(pid, 0)
                if sequence.producer is not client._producer:
                    _follow(sequence, client._producer)
            line = self._format(record, pid, seq)
            stats = client.stats
            taken = stats['records']
            # The seq is taken before the line is queued, and given back when it was not: a
            # refused record (ValueError, Closed) leaves no gap, and an exception of a signal
            # handler (KeyboardInterrupt) raised once the client holds the line (the client counts
            # a line as it queues it, with no call in between) leaves no duplicate.
            if self._seq_field is not None:
                sequence.seqs[pid] = seq + 1
            try:
                client.send(line)
            except BaseException:
                if stats['records'] == taken:
                    if self._seq_field is not None:
                        sequence.seqs[pid] = seq
                elif deferred:
                    sequence.deferred.popleft()
                raise
        except Closed:
            reopened = again and self._reopen()
            if not reopened:
                self._closed_drop()
        except RecordTooLarge:
            # Said once, as Node's producers say it (a process warning, once); each one is counted
            # in the client's stats['too_large']. Before, each was logging's 40-line report of a
            # bare ValueError, without a code.
            if self.client.stats['too_large'] == 1:
                self.handleError(record)
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise into the caller
            self.handleError(record)
        finally:
            sequence.emitting = False
        if reopened:
            self._emit(record, deferred, False)

    def _reopen(self) -> bool:
        """A record logged through this handler after its close(): it takes the client of its
        options again (the one other handlers made with them share, or a new one), as a closed
        FileHandler opens its file again, and the record is sent. So a dictConfig or fileConfig
        that reconfigures at runtime (it closes the old handlers, then makes the new ones) loses
        none of what other threads log through the old handler meanwhile: the new handler takes
        the same client. Not for a handler given ``client=`` or ``on_error=``, nor once the end
        of the process has closed its client (its late records go to the spool, _spool_late)."""
        if self._share is None or getattr(self.client, '_exit_closed', True) or sys.is_finalizing():
            return False
        endpoint, options = self._share
        client = shared_client(self, endpoint, dict(options))
        if client is None or client._closed:
            return False
        self.client, self._left = client, False
        return True

    def _closed_drop(self) -> None:
        # After close(): at interpreter exit logging.shutdown() and the exit hook close every
        # handler while daemon threads may still log. Said once, not once per record.
        self.closed_drops += 1
        if self.closed_drops == 1:
            say('logfunnel: LOGFUNNEL_ERR_CLOSED: a record was logged through a closed LogfunnelHandler '
                '(after close() or logging.shutdown(), as daemon threads do at exit); such records '
                'are not sent, counted in closed_drops, and reported this once\n')

    def _send_deferred(self) -> None:
        _send_deferred(self._sequence)

    def flush(self) -> None:
        """Waits for the receipts, at most close_timeout, or, while the writer is away, until every
        record without one is copied to the spool (``logging.shutdown()`` flushes before it closes:
        it ends without waiting out the deadline). Records still without a receipt stay held
        (close() spools them, or reports what it cannot keep), so a timeout here is not an error."""
        client = getattr(self, 'client', None)
        if client is None:
            return  # its constructor raised (a bad option): logging still lists it, and flushes it at exit
        self._send_deferred()
        try:
            client._flush_or_spooled()
        except CloseTimeout:
            pass

    def close(self) -> None:
        """Waits for the receipts (at most close_timeout; with the writer away, until what has none
        is in the spool), then closes the client, or, while other handlers share it, leaves it to
        them: its records not yet confirmed stay with the client, confirmed, spooled or reported
        as theirs are. A record logged through it afterwards takes the client again (_reopen)."""
        try:
            client = getattr(self, 'client', None)
            if client is not None and not self._left:
                self._send_deferred()
                # The last one stays a sharer: the close's reports go through its handleError.
                if leave_client(self, client):
                    self._left = True
                    try:
                        client._flush_or_spooled()
                    except CloseTimeout:
                        pass
                else:
                    client.close_or_report()
        finally:
            super().close()

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        """logging's report of an error in this handler. One of logfunnel's own (LogfunnelError: a
        writer not reached, a sender that could not start) is one line written at once, with its
        stable code, as Node's producers say it: ``logfunnel: LOGFUNNEL_ERR_CONNECT: ...``. Before,
        each was logging's 40-line report (traceback and call stack) written line by line, and a
        pool's workers reporting at the same moment interleaved their lines. Any other error (a
        record that cannot be formatted) is reported as logging reports it. Both follow
        ``logging.raiseExceptions``, except a report of records lost (LOGFUNNEL_ERR_CLOSE_TIMEOUT
        with ``lost``), said in any case; a subclass may override this, as with any handler."""
        err = sys.exc_info()[1]
        if not isinstance(err, LogfunnelError):
            super().handleError(record)
        elif logging.raiseExceptions or (isinstance(err, CloseTimeout) and err.lost):
            # Records lost are said whatever raiseExceptions says, as before they came this way.
            report(err)  # one line; sys.stderr None, closed or broken: nothing said, nothing raised

    def _client_error(self, err: LogfunnelError) -> None:
        """Reports a client error through logging's handleError path (stderr by default)."""
        record = logging.makeLogRecord({'name': 'logfunnel', 'levelno': logging.ERROR, 'levelname': 'ERROR',
                                        'msg': 'logfunnel: the error above says what happens to the records'})
        try:
            # Only its own cause: not the exception the application may be handling meanwhile
            # (a close in an except or finally block), which has nothing to do with it.
            raise err from err.__cause__
        except LogfunnelError:
            self.handleError(record)


def _emit_deferred(sequence: Sequence) -> None:
    """Sends the deferred records, oldest first, each through the handler that it was logged
    with. Each leaves ``deferred`` once sent (no call runs between _emit's return and the popleft,
    so no signal handler either): one that an exception interrupts stays there, for the next
    emit, flush(), close() or the exit."""
    deferred = sequence.deferred
    while deferred and not sequence.emitting:
        handler, record = deferred[0]
        handler._emit(record, True)
        deferred.popleft()


def _send_deferred(sequence: Sequence) -> None:
    """flush(), close() and the ends of the process: sends the records an exception left
    deferred. Not from inside an emit (a signal handler's flush), whose end sends them, nor
    while another thread emits (it sends them)."""
    lock = sequence.lock
    if not sequence.deferred or sequence.emitting or not lock.acquire(blocking=False):
        return
    try:
        _emit_deferred(sequence)
    finally:
        lock.release()


def _follow(sequence: Sequence, producer: Any) -> None:
    """Under the sequence's lock, before the first line of a client (``producer``, its
    ``_Producer``) in the sequence: the lines of the one that took the last one (a shared client
    closed with its last handler while another thread made the next, or dropped; handlers with
    other client options) are in the file, or in the spool with the writer away, before this one
    is queued: two clients' batches reach the writer in no set order, and verify would report the
    later ones as reordered. The producer, not the Client, is kept: a Client dropped is still
    collected and closed (its producer's release), and waited for here."""
    previous, sequence.producer = sequence.producer, producer
    if previous is not None and not previous._close_ended and previous.pid == os.getpid():
        try:
            previous._flush_or_spooled()
        except CloseTimeout:
            pass  # its close reports what it could not keep


def _send_all_deferred() -> None:
    """The end of the process (exit hooks, a fatal signal): each sequence sends what an
    interrupted emit left deferred. What an exception keeps from going is reported with its
    count; an exception that is not an Exception (KeyboardInterrupt) is raised on after that."""
    sequences = {id(s): s for s in _sequence.all_sequences()}
    sequences.update((id(handler._sequence), handler._sequence) for handler in list(_handlers))
    for sequence in sequences.values():
        try:
            _send_deferred(sequence)
        except BaseException as err:
            say('logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: %d records logged from a signal handler during an '
                'emit lost at the end of the process (%s: %s)\n'
                % (len(sequence.deferred), type(err).__name__, err))
            if not isinstance(err, Exception):
                raise


_forks.after_in_child(LogfunnelHandler._forked)
_exit.before_close(_send_all_deferred)
