"""``Client``: one producer speaking logfunnel's wire protocol (docs/protocol.md) over pyzmq."""

from __future__ import annotations

import weakref
from typing import Any, Callable, Dict, Optional, Union

from ._producer import _Producer
from .errors import LogfunnelError

KiB = 1024
MiB = 1024 * KiB


class Client:
    """One producer: a PUSH socket for batches and a SUB socket for its receipts.

    ``send(line)`` queues one line (no newline inside; one is added) and returns at once; a
    sender thread batches what was queued, up to ``max_batch_bytes``, and sends it. Past
    ``high_water_mark`` bytes held without a receipt, ``on_full`` applies: ``'block'`` waits
    for receipts, at most ``block_timeout`` s (0: however long it takes), then moves what is held
    to the spool and goes on, or with no spool drops records past ``high_water_mark`` (counted)
    until there is room; ``'drop'`` drops the record (counted in ``stats['dropped']``);
    ``'spool'`` moves what is held to the spool. After
    ``os.fork()`` the child starts afresh as a producer of its own (new id, nothing inherited).

    Records without a receipt at ``close()``'s deadline, at interpreter exit and at
    multiprocessing's finalizers (after ``linger`` s when there is a spool, else ``close_timeout``),
    and on a fatal signal (SIGTERM, SIGHUP, ...) go to the spool (``spool_dir``, by default
    ``<ipc path>.spool`` as for Node's producers), from which the writer ingests them; what
    cannot be kept is reported on stderr with its count.

    A Client dropped without ``close()`` is closed as if ``close()`` had been called (in a
    thread of its own, so nothing waits where it was dropped): its records are confirmed or
    spooled, then its thread and sockets end.
    """

    send: Callable[[Union[str, bytes]], None]
    flush: Callable[..., None]
    close: Callable[..., None]
    abandon: Callable[[str], int]
    close_or_report: Callable[..., None]

    def __init__(self, endpoint: Optional[str] = None, receipt_endpoint: Optional[str] = None,
                 max_batch_bytes: int = 256 * KiB, max_frame_bytes: int = 1 * MiB, high_water_mark: int = 16 * MiB,
                 receipt_timeout: float = 5.0, close_timeout: float = 10.0, send_high_water_mark: int = 1000,
                 on_full: str = 'block', spool_dir: Optional[str] = None, connect_timeout: float = 10.0,
                 curve_server_key: Optional[str] = None, curve_secret_key: Optional[str] = None,
                 curve_public_key: Optional[str] = None, curve_key_file: Optional[str] = None,
                 on_error: Optional[Callable[[LogfunnelError], None]] = None, batch_delay: Optional[float] = None,
                 linger: float = 1.0, block_timeout: float = 10.0, spool_after: float = 0.1) -> None:
        producer = _Producer(endpoint=endpoint, receipt_endpoint=receipt_endpoint, max_batch_bytes=max_batch_bytes,
                             max_frame_bytes=max_frame_bytes, high_water_mark=high_water_mark,
                             receipt_timeout=receipt_timeout, close_timeout=close_timeout,
                             send_high_water_mark=send_high_water_mark, on_full=on_full, spool_dir=spool_dir,
                             connect_timeout=connect_timeout, curve_server_key=curve_server_key,
                             curve_secret_key=curve_secret_key, curve_public_key=curve_public_key,
                             curve_key_file=curve_key_file, on_error=on_error, batch_delay=batch_delay, linger=linger,
                             block_timeout=block_timeout, spool_after=spool_after)
        self._producer = producer
        # The producer's own bound methods: no extra call per record, and no reference back here.
        self.send = producer.send
        self.flush = producer.flush
        self.close = producer.close
        self.abandon = producer.abandon
        self.close_or_report = producer.close_or_report
        weakref.finalize(self, producer.release).atexit = False

    @property
    def stats(self) -> Dict[str, int]:
        return self._producer.stats

    @property
    def pid(self) -> int:
        return self._producer.pid

    def __getattr__(self, name: str) -> Any:
        # Options and state (endpoint, spool_dir, on_full, ...) are the producer's.
        if name == '_producer':
            raise AttributeError(name)
        return getattr(self._producer, name)
