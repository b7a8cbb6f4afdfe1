"""Errors with the stable codes Node's side uses (shared/errors.ts)."""

from __future__ import annotations

import errno
import os
import sys
from typing import Optional


class LogfunnelError(Exception):
    """Base class: ``code`` is a stable LOGFUNNEL_ERR_* string."""

    code = 'LOGFUNNEL_ERR_INTERNAL'

    def __str__(self) -> str:
        return '%s: %s' % (self.code, super().__str__())


class CloseTimeout(LogfunnelError):
    """close() or flush() passed its deadline; ``unconfirmed`` records have no receipt. A close
    that ended with records in the spool says so with the fields of Node's CloseTimeoutError:
    ``spooled`` (in ``spool_dir``), ``lost``, ``writer_away`` (it ended before its deadline: the
    writer does not answer) and ``ending`` (how it ended, as the message begins)."""

    code = 'LOGFUNNEL_ERR_CLOSE_TIMEOUT'

    def __init__(self, message: str, unconfirmed: int, spooled: int = 0, spool_dir: Optional[str] = None,
                 lost: int = 0, writer_away: bool = False, ending: str = '') -> None:
        super().__init__(message)
        self.unconfirmed = unconfirmed
        self.spooled = spooled
        self.spool_dir = spool_dir
        self.lost = lost
        self.writer_away = writer_away
        self.ending = ending

    @classmethod
    def spooled_at_close(cls, ending: str, spooled: int, spool_dir: Optional[str], writer_away: bool) -> 'CloseTimeout':
        """The report of a close that ended with every record without a receipt in the spool, in
        the Node producer's words: "close ended before its 10000 ms deadline: the writer does not
        answer: 100 records without a receipt went to the spool in DIR, where the writer ingests them"."""
        return cls('%s: %d records without a receipt went to the spool in %s, where the writer ingests them'
                   % (ending, spooled, spool_dir or '?'), 0, spooled, spool_dir, 0, writer_away, ending)


class RecordTooLarge(LogfunnelError, ValueError):
    """A record over max_frame_bytes, refused by the producer (a ``ValueError`` too, as before it
    had a code); the records around it are kept. Node's producers refuse such a record the same way."""

    code = 'LOGFUNNEL_ERR_RECORD_TOO_LARGE'

    def __init__(self, size: int, max_frame_bytes: int) -> None:
        super().__init__('record of %d bytes exceeds max_frame_bytes (%d bytes); it was not sent' % (size, max_frame_bytes))
        self.size = size


class Closed(LogfunnelError, RuntimeError):
    """A record sent after close() (a ``RuntimeError`` too, as before it had a code)."""

    code = 'LOGFUNNEL_ERR_CLOSED'


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


class SenderFailed(LogfunnelError):
    """An exception in the sender thread (a bug, or a fault of its environment). The sender
    starts again and sends again what had no receipt (the writer writes each batch once); after
    too many failures in a row it gives up: what it holds goes to the spool, and records logged
    from then on are dropped and counted."""

    code = 'LOGFUNNEL_ERR_SENDER_FAILED'

    def __init__(self, cause: BaseException, spooled: int, restarted: bool, started: bool = True,
                 no_descriptor: bool = False) -> None:
        if no_descriptor:  # EMFILE, ENFILE: not counted as a failure
            detail = ('no free descriptor for its ZeroMQ context and sockets; records are kept, and it starts again once '
                      'one is free (tried again after 0.1 s, doubling up to 1 s, for as long as it lasts; this does not '
                      'count toward giving up)')
        elif not started:  # no free descriptor, no thread could be made (a pids limit, memory)
            detail = ('records are kept meanwhile, and go to the spool past high_water_mark and at the end, never '
                      'waited for (tried again each second)')
        elif restarted:
            detail = 'it starts again and sends again what has no receipt'
        else:
            detail = ('too many failures; %d records without a receipt went to the spool, records from now on are '
                      'dropped and counted' % spooled)
        super().__init__('the sender %s (%s: %s): %s' % (
            'failed' if started else 'could not start', type(cause).__name__, cause, detail))
        self.__cause__ = cause


class SenderStalled(SenderFailed):
    """The sender thread gave no sign of life for ``seconds`` s (blocked for good in a call: a
    bug, a library that hangs): ``what`` goes on without it; ``spooled`` records without a
    receipt went to the spool, ``lost`` could not be kept."""

    def __init__(self, seconds: float, what: str, spooled: int, lost: int) -> None:
        LogfunnelError.__init__(self, 'the sender thread gave no sign of life for %g s (blocked in a call that does not '
                                      'return): %s: %d records without a receipt went to the spool, %d lost'
                                % (seconds, what, spooled, lost))


class NoThreads(LogfunnelError):
    """The sender thread runs only now and then: a uWSGI worker started without Python threads
    (no ``--enable-threads``) keeps the GIL while it waits for the next request. Records are
    sent while requests run and at the worker's end; those logged before it goes idle wait
    until then, and a worker killed meanwhile (SIGKILL: harakiri, the OOM killer, a reload past
    its mercy) loses them. Said once per worker, at its first record."""

    code = 'LOGFUNNEL_ERR_NO_THREADS'

    def __init__(self) -> None:
        super().__init__('uWSGI runs this worker without Python threads: start it with --enable-threads. Until then the '
                         'sender thread runs only while a request runs: records logged before the worker goes idle wait '
                         'for its next request or its end, and are lost if it is killed meanwhile (SIGKILL: harakiri, '
                         'the OOM killer)')


def failure_text(err: BaseException) -> str:
    """A spool failure as Node's producers say it, its code first: "ENOSPC: No space left on
    device: '/run/app/writer.sock.spool/...'", "LOGFUNNEL_ERR_UNSAFE_ENDPOINT: spool directory ..."."""
    if isinstance(err, LogfunnelError):
        return str(err)
    if isinstance(err, OSError) and err.errno is not None:
        text = '%s: %s' % (errno.errorcode.get(err.errno, 'E%d' % err.errno), err.strerror)
        return text if err.filename is None else "%s: '%s'" % (text, err.filename)
    return '%s: %s' % (type(err).__name__, err)


def lost_text(why: str, lost: int, sent: int, cause: str) -> str:
    """How records without a receipt that could not be kept are said. Those whose batch was sent
    may still reach the file (a writer stopped or slow holds them in its socket's buffers, and
    writes them when it goes on): "may be lost", not "lost" (before, 100 of 100 said lost were
    written once the writer went on)."""
    if sent == 0:
        return '%s: %d records without a receipt lost, never sent (%s)' % (why, lost, cause)
    return ('%s: %d records without a receipt may be lost (%s): %d of them were sent, and the writer writes '
            'them if it has them' % (why, lost, cause, sent))


def report(err: BaseException) -> None:
    """One line on stderr: what a thread or exit hook cannot raise to anybody."""
    say('logfunnel: %s\n' % (err if isinstance(err, LogfunnelError) else '%s: %s' % (type(err).__name__, err)))


def say(text: str) -> None:
    """Writes ``text`` (whole lines) to stderr; never raises. A daemon's or a service's stderr may
    be None (pythonw, or set so), a pipe whose reader has exited or /dev/full: the program without
    logfunnel goes on there, so a report must not raise into a close() or a log call. The
    interpreter's own stderr is written at its descriptor (after what it holds is flushed): a line
    that cannot be written does not stay in its buffer, whose failed flush at the exit would end
    the program with status 120. Another stream (Celery's redirect, a capture) gets the text."""
    stream = sys.stderr
    if stream is None:  # nowhere to say it
        return
    try:
        if stream is not sys.__stderr__:
            stream.write(text)
            stream.flush()
            return
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - what it held is not ours to report
            pass
        data = text.encode(stream.encoding or 'utf-8', 'backslashreplace')
        fd = stream.fileno()
        while data:
            data = data[os.write(fd, data):]
    except Exception:  # noqa: BLE001 - EPIPE, ENOSPC, EBADF, a closed stream: nobody to tell
        pass
