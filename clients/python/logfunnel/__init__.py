"""logfunnel client for Python: push log lines to a logfunnel writer over ZeroMQ, with receipts.

Standard library + pyzmq only. ``Client`` speaks the full wire protocol of logfunnel
(docs/protocol.md): lines are coalesced into batches with a 40-byte header, the writer confirms
what is in the file with receipts, and the client keeps every batch without a receipt and
resends from the first of them (go-back-N) when the writer reports a gap or receipts stall.
What still has no receipt at ``close()``'s deadline, at exit or on a fatal signal (SIGTERM, SIGHUP, ...) goes to the spool,
which the writer ingests. ``LogfunnelHandler`` is a ``logging.Handler`` that writes one
pino-compatible JSON object per record through a ``Client``.

    import logging, logfunnel
    logging.getLogger().addHandler(logfunnel.LogfunnelHandler(endpoint='ipc:///tmp/logfunnel-1000/writer.sock'))
"""

from __future__ import annotations

from ._version import __version__
from .client import Client
from .endpoint import default_endpoint, receipt_endpoint_for
from .errors import Closed, CloseTimeout, ConnectError, HandshakeError, LogfunnelError, NoThreads, SenderFailed
from .handler import PINO_LEVELS, LogfunnelHandler, pino_level
from .spool import default_spool_dir

__all__ = ['Client', 'LogfunnelHandler', 'Closed', 'CloseTimeout', 'ConnectError', 'HandshakeError', 'LogfunnelError', 'NoThreads', 'SenderFailed',
           'default_endpoint', 'default_spool_dir', 'receipt_endpoint_for', 'pino_level', 'PINO_LEVELS', '__version__']
