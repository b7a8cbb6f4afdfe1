"""Errors with the stable codes Node's side uses (shared/errors.ts)."""

from __future__ import annotations


class LogfunnelError(Exception):
    """Base class: ``code`` is a stable LOGFUNNEL_ERR_* string."""

    code = 'LOGFUNNEL_ERR_INTERNAL'

    def __str__(self) -> str:
        return '%s: %s' % (self.code, super().__str__())


class CloseTimeout(LogfunnelError):
    """close() or flush() passed its deadline; ``unconfirmed`` records have no receipt."""

    code = 'LOGFUNNEL_ERR_CLOSE_TIMEOUT'

    def __init__(self, message: str, unconfirmed: int) -> None:
        super().__init__(message)
        self.unconfirmed = unconfirmed


class ConnectError(LogfunnelError):
    """No connection to the writer's endpoint within connect_timeout (nothing listens there)."""

    code = 'LOGFUNNEL_ERR_CONNECT'

    def __init__(self, endpoint: str, timeout: float, reason: str) -> None:
        super().__init__('no writer answered at %s within %d ms: %s' % (endpoint, timeout * 1000, reason))


class HandshakeError(LogfunnelError):
    """Connected, but no ZMTP handshake completed within connect_timeout (a CURVE key mismatch,
    or something that is not a writer listens there)."""

    code = 'LOGFUNNEL_ERR_HANDSHAKE'

    def __init__(self, endpoint: str, timeout: float, reason: str) -> None:
        super().__init__('%s accepts connections but no writer answered within %d ms: %s' % (endpoint, timeout * 1000, reason))
