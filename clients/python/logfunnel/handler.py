"""``LogfunnelHandler``: a logging.Handler writing pino-compatible JSON lines through a ``Client``."""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import traceback
from typing import Any, Dict, Optional

from .client import Client
from .errors import CloseTimeout, LogfunnelError

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
    return repr(value)


class LogfunnelHandler(logging.Handler):
    """A logging.Handler writing one JSON object per record, with pino's fields: ``level``
    (pino's number), ``time`` (ms since the epoch), ``pid``, ``hostname``, ``name`` (the logger),
    ``msg``, then the ``extra=`` fields, and ``err`` ({type, message, stack}) with exc_info.

    ``seq_key='seq'`` adds a per-process counter 0, 1, 2, ... so that ``logfunnel verify`` can
    prove nothing was lost or reordered. Client options (endpoint, close_timeout, on_full,
    spool_dir, curve_server_key, ...) pass through, so ``dictConfig`` can set them all;
    ``close()`` waits for the receipts, then spools what has none. Connect and handshake
    failures go through ``handleError`` once.
    """

    def __init__(self, endpoint: Optional[str] = None, level: int = logging.NOTSET, seq_key: Optional[str] = None,
                 client: Optional[Client] = None, **client_options: Any) -> None:
        super().__init__(level)
        client_options.setdefault('on_error', self._client_error)
        self.client = client or Client(endpoint, **client_options)
        self.seq_key = seq_key
        self.hostname = socket.gethostname()
        self._seq_pid = os.getpid()
        self._seq = 0
        self._levels: Dict[int, int] = {}
        self._encode = json.JSONEncoder(default=_fallback, ensure_ascii=False, separators=(',', ':')).encode

    def format_record(self, record: logging.LogRecord) -> str:
        """The JSON line for ``record`` (without newline)."""
        levelno = record.levelno
        level = self._levels.get(levelno)
        if level is None:
            level = self._levels[levelno] = pino_level(levelno)
        obj: Dict[str, Any] = {'level': level, 'time': int(record.created * 1000), 'pid': record.process,
                               'hostname': self.hostname, 'name': record.name}
        if self.seq_key is not None:
            if self._seq_pid != os.getpid():  # a forked child counts from 0
                self._seq_pid, self._seq = os.getpid(), 0
            obj[self.seq_key] = self._seq
            self._seq += 1
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in obj:
                obj[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            obj['err'] = {'type': record.exc_info[0].__name__, 'message': str(record.exc_info[1]),
                          'stack': ''.join(traceback.format_exception(*record.exc_info))}
        obj['msg'] = record.getMessage()
        return self._encode(obj)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.client.send(self.format_record(record))
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise into the caller
            self.handleError(record)

    def flush(self) -> None:
        """Waits for the receipts, at most close_timeout; records still without one stay held
        (close() spools them, or reports what it cannot keep), so a timeout here is not an error."""
        try:
            self.client.flush()
        except CloseTimeout:
            pass

    def close(self) -> None:
        try:
            self.client.close_or_report()
        finally:
            super().close()

    def _client_error(self, err: LogfunnelError) -> None:
        """Reports a client error through logging's handleError path (stderr by default)."""
        record = logging.makeLogRecord({'name': 'logfunnel', 'levelno': logging.ERROR, 'levelname': 'ERROR',
                                        'msg': 'logfunnel: records are kept until the writer answers'})
        try:
            raise err
        except LogfunnelError:
            self.handleError(record)
