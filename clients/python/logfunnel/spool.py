"""The producer's side of the spool, in the format of Node's producers (docs/spool.md).

A file starts with a preamble: b"LFS\\x01", a 4-byte big-endian length, then JSON
``{"endpoint": <endpoint key>, "pid": N, "start": <process start time or null>, "made": "<ns>"}``
(``made``: when the producer was made, ``time.monotonic_ns()`` as decimal digits, the clock of
Node's ``process.hrtime.bigint()``: the writer takes the producers of one process in that
order); then entries:
the 40-byte protocol header, a 4-byte big-endian payload length, the payload (whole lines). A
segment is written as ``<id>-<pid>-<segment>.spool.tmp`` and renamed to ``.spool`` when complete.
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import time
from typing import List, Optional, Tuple

from .endpoint import parse_endpoint
from .errors import LogfunnelError

SPOOL_SUFFIX = '.spool'
SPOOL_TMP_SUFFIX = '.spool.tmp'
SEGMENT_BYTES = 4 * 1024 * 1024
SEGMENT_MAX_AGE = 0.1  # seconds: as Node, a segment is handed over this long after its first entry
PREAMBLE_MAGIC = b'LFS\x01'
_LENGTH = struct.Struct('>I')


def default_spool_dir(endpoint: str) -> Optional[str]:
    """``<ipc path>.spool`` beside the writer's socket, as both Node sides use; None for tcp."""
    transport, path, _port = parse_endpoint(endpoint)
    return path + SPOOL_SUFFIX if transport == 'ipc' else None


def endpoint_key(endpoint: str) -> str:
    """What a spool file records of its endpoint: ``ipc://<absolute path>`` or ``tcp:<port>``."""
    transport, path, port = parse_endpoint(endpoint)
    return 'ipc://' + os.path.abspath(path) if transport == 'ipc' else 'tcp:%d' % port


def process_start_time(pid: int) -> Optional[str]:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), None without /proc. io.open, not
    the builtin: a record logged from a __del__ at the interpreter's teardown opens the spool when
    builtins.open is already gone (the interpreter restores builtins to their copy from before io
    set it: NameError, the record lost; logging's FileHandler keeps its own reference for that)."""
    try:
        with io.open('/proc/%d/stat' % pid, 'rb') as f:
            data = f.read().decode('ascii', 'replace')
    except OSError:
        return None
    return data[data.rindex(')') + 2:].split(' ')[19]


def fd_identity(fd: int) -> Optional[Tuple[int, int]]:
    """(device, inode) of what ``fd`` refers to; None when it is not open."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class SpoolError(LogfunnelError):
    """The spool directory is not safe to write (another user's, or writable by others). A
    LogfunnelError, so the spool's error handling takes it as it takes an OSError: what cannot be
    kept is counted and reported, never raised into the application (before, the sender thread
    failed over it until it gave up, and close() raised it)."""

    code = 'LOGFUNNEL_ERR_UNSAFE_ENDPOINT'


class SpoolWriter:
    """Appends entries to a segment of this process's own (no lock needed) and renames it to
    ``.spool`` once complete, so the writer never reads a half-written file of a live process."""

    def __init__(self, directory: str, producer_id_hex: str, endpoint: str, made: Optional[int] = None) -> None:
        """``made``: when the producer was made (``time.monotonic_ns()`` as it made its id); now by default."""
        self.dir = directory
        self._id_hex = producer_id_hex
        self._segment = 0
        self._fd = -1
        self._fd_identity: Optional[Tuple[int, int]] = None
        self._tmp_path = ''
        self._bytes = 0
        self.opened_at = 0.0
        self._unrenamed: List[str] = []  # complete segments whose rename failed, tried again at each seal
        pid = os.getpid()
        preamble = json.dumps({'endpoint': endpoint_key(endpoint), 'pid': pid, 'start': process_start_time(pid),
                               'made': str(time.monotonic_ns() if made is None else made)}, separators=(',', ':')).encode()
        self._preamble = PREAMBLE_MAGIC + _LENGTH.pack(len(preamble)) + preamble

    @property
    def open(self) -> bool:
        return self._fd != -1

    def append(self, header: bytes, payload: bytes) -> None:
        """Appends one entry; OSError or SpoolError to the caller."""
        if self._fd == -1:
            self._check_dir()
            name = '%s-%d-%010d%s' % (self._id_hex, os.getpid(), self._segment, SPOOL_TMP_SUFFIX)
            self._tmp_path = os.path.join(self.dir, name)
            self._fd = os.open(self._tmp_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            self._fd_identity = fd_identity(self._fd)
            try:
                self._write_all(self._preamble)
            except OSError:
                # No entry in it, and handed over it would be one more empty file per entry tried.
                self._drop_segment()
                raise
            self.opened_at = time.monotonic()
        entry = header + _LENGTH.pack(len(payload)) + payload
        view = memoryview(entry)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            self._abandon_entry(len(entry) - len(view))
            raise
        self._bytes += len(entry)
        if self._bytes >= SEGMENT_BYTES:
            self.seal()

    def seal(self) -> None:
        """Closes the open segment and hands it to the writer (renames it to ``.spool``). The
        segment is done with even when the rename fails (the OSError is raised): the next entry
        goes to a new segment, never after this one's end (its preamble again in the middle of a
        file made the writer set the rest aside as torn), and the rename is tried again at the
        next seal. A segment never renamed is ingested as ``.spool.tmp`` once the process ended."""
        if self._fd != -1:
            self._end_segment()
        pending, self._unrenamed = self._unrenamed, []
        failure: Optional[OSError] = None
        for tmp in pending:
            try:
                os.rename(tmp, tmp[:-len(SPOOL_TMP_SUFFIX)] + SPOOL_SUFFIX)
            except FileNotFoundError:
                pass
            except OSError as err:
                self._unrenamed.append(tmp)
                failure = failure or err
        if failure is not None:
            raise failure

    def close_inherited(self) -> None:
        """In a forked child: closes the open segment's descriptor if it is still that file (not
        a number closed and reused just before the fork); this writer is not used again."""
        if self._fd != -1 and fd_identity(self._fd) == self._fd_identity:
            os.close(self._fd)
        self._fd = -1

    def _abandon_entry(self, written: int) -> None:
        """After an entry failed with ``written`` of its bytes in the file (ENOSPC, EIO, EFBIG
        part-way): the caller has the error and keeps the batch, so those bytes are cut off again;
        handed over, they were a torn tail the writer set aside and reported as a crash's. A
        segment left with no entry is removed, one with entries handed over; the next entry starts
        a segment of its own. Should the cut fail, the segment goes as it is: the writer writes its
        whole entries and sets the torn tail aside."""
        cut = written == 0
        if not cut:
            try:
                # The size less what was written: O_APPEND put the entry at the file's end.
                os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)
                cut = True
            except OSError:
                pass
        if cut and self._bytes == 0:
            self._drop_segment()
            return
        self._end_segment()
        try:
            self.seal()
        except OSError:
            pass

    def _drop_segment(self) -> None:
        """Closes and removes the open segment (it holds no entry); the segment number moves on."""
        path = self._close_segment()
        try:
            os.unlink(path)
        except OSError:
            pass

    def _end_segment(self) -> None:
        """Closes the open segment; it waits in ``_unrenamed`` for seal() to hand it over."""
        self._unrenamed.append(self._close_segment())

    def _close_segment(self) -> str:
        try:
            os.close(self._fd)
        except OSError:
            pass
        self._fd = -1
        self._segment += 1
        self._bytes = 0
        return self._tmp_path

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def _check_dir(self) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        st = os.lstat(self.dir)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
            raise SpoolError('spool directory %s is not a directory of this user, closed to others' % self.dir)
