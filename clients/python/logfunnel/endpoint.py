"""Endpoints as the writer reads them: ``ipc://<path>`` or ``tcp://<host>:<port>``."""

from __future__ import annotations

import os
from typing import Optional, Tuple


def parse_endpoint(endpoint: str) -> Tuple[str, str, Optional[int]]:
    """(transport, ipc path or tcp host, tcp port); ValueError for anything else."""
    if endpoint.startswith('ipc://') and len(endpoint) > len('ipc://'):
        return 'ipc', endpoint[len('ipc://'):], None
    if endpoint.startswith('tcp://'):
        host, _, port = endpoint[len('tcp://'):].rpartition(':')
        if host and port.isdigit():
            return 'tcp', host, int(port)
    raise ValueError('endpoint must be ipc://<path> or tcp://<host>:<port>, got %r' % (endpoint,))


def default_endpoint() -> str:
    """The writer's default endpoint: ipc://<tmpdir>/logfunnel-<uid>/writer.sock, <tmpdir> as
    Node's os.tmpdir() finds it (TMPDIR, TMP, TEMP, else /tmp), joined as Node's path.join
    does (normalised). tempfile.gettempdir() reads TEMP before TMP and skips a directory it
    cannot write: with TMP and TEMP both set, or /tmp closed to this user, it named another
    socket than the writer's."""
    tmp = os.environ.get('TMPDIR') or os.environ.get('TMP') or os.environ.get('TEMP') or '/tmp'
    return 'ipc://%s' % os.path.normpath(os.path.join(tmp, 'logfunnel-%d' % os.getuid(), 'writer.sock'))


def receipt_endpoint_for(endpoint: str) -> str:
    """The receipt endpoint the writer derives: <ipc path>.receipts, or the tcp port + 1."""
    transport, host, port = parse_endpoint(endpoint)
    return endpoint + '.receipts' if transport == 'ipc' else 'tcp://%s:%d' % (host, (port or 0) + 1)
