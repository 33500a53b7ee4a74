"""Output files that appear only when complete: what a path output is.

The scheme of the CLI (``cli/src/outfile.rs``), for every path the package
writes (``open(path, "wb")``, ``encrypt`` and ``decrypt`` to a path):

- The output is written to an unnamed file in the target's directory
  (Linux ``O_TMPFILE``), which the kernel removes whatever ends the process
  (SIGKILL, ``os._exit`` and power loss included). Only :meth:`Output.commit`
  names it: after ``fsync`` of the file it is linked into place
  (``linkat`` through ``/proc/self/fd``, which never overwrites; an existing
  target is replaced by ``rename`` from a hidden name that exists only
  between those two calls), then the directory is synced, so the name
  survives a crash once the call that wrote it returned.
- Where ``O_TMPFILE`` is missing (other systems, NFS, FUSE, no
  ``/proc``), the file is a named hidden ``.NAME.PID.XXXXXXXX.kapsel-partial``
  in the same directory, removed by :meth:`Output.discard` (an exception, a
  writer dropped unclosed, ``KeyboardInterrupt``). One that a SIGKILL (or an
  unhandled SIGTERM) left is removed by the next kapsel, CLI or Python, that
  writes into the directory, once its process is gone and nothing changed
  it for a minute. The package installs no signal handlers.
- A symbolic link is followed: the file it points to is replaced (the link
  stays). A device, FIFO or socket, ``/dev/stdout`` and anything under
  ``/proc`` or ``/dev/fd`` is written in place: there is nothing to make
  atomic. A directory is refused, and so is a regular file one may not
  write (as ``cp`` and the CLI refuse it; root replaces it).
- A replaced regular file keeps its permission bits (never set-user-ID or
  set-group-ID) and, where allowed, its owner and group; a new file gets
  the mode the umask leaves of 0666. Until the commit the file is 0600.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import time
from typing import BinaryIO, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

#: The suffix of every named temporary file kapsel makes (the CLI's too).
PARTIAL_SUFFIX = ".kapsel-partial"

#: Test-only: ``"1"`` makes outputs take the named fallback, as if the file
#: system had no ``O_TMPFILE`` (the CLI reads the same variable). Not for
#: users.
FORCE_NAMED_ENV = "KAPSEL_TEST_NAMED_TEMPFILE"

#: Seconds a named temporary file must have been left alone, its process
#: gone, before another kapsel removes it.
STALE_AFTER = 60.0

_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _proc_fd(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _unnamed(directory: str) -> Optional[int]:
    """An ``O_TMPFILE`` in ``directory``, or ``None`` where the system or
    file system has none (or ``/proc/self/fd``, needed to link it, is
    missing). Any error falls back: the named file then reports the real
    one (a missing directory, no permission)."""
    if not _O_TMPFILE or os.environ.get(FORCE_NAMED_ENV) == "1":
        return None
    try:
        fd = os.open(directory, _O_TMPFILE | os.O_WRONLY | _O_CLOEXEC, 0o600)
    except OSError:  # EOPNOTSUPP, EISDIR (old kernels), EINVAL, ...
        return None
    try:
        os.stat(_proc_fd(fd))
        # Not subject to the umask: writable through /proc/self/fd (the path
        # Rust reopens) whatever the umask.
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        return None
    return fd


def _partial_file_pid(name: str) -> Optional[int]:
    """The PID in ``.NAME.PID.XXXXXX.kapsel-partial``."""
    if not (name.startswith(".") and name.endswith(PARTIAL_SUFFIX)):
        return None
    parts = name[1 : -len(PARTIAL_SUFFIX)].rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return int(parts[1])


def _process_is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def remove_stale(directory: str) -> None:
    """Removes ``.*.PID.*.kapsel-partial`` files in ``directory`` whose
    process is no longer running and which nothing changed for
    :data:`STALE_AFTER` seconds: what a SIGKILL left of a named temporary
    file."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        pid = _partial_file_pid(entry.name)
        if pid is None or pid == os.getpid() or _process_is_running(pid):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime >= STALE_AFTER:
                os.unlink(entry.path)
        except OSError:
            pass


def _is_magic(path: str) -> bool:
    """Paths whose symbolic links are the kernel's, not file names: written
    in place, never followed or replaced (``/dev/stdout`` too)."""
    return path in ("/dev/stdout", "/dev/stderr") or path.startswith(("/proc/", "/dev/fd/"))


class Output:
    """A file for ``path`` that appears there only by :meth:`commit`.

    ``file`` is a buffered binary file to write; ``write_path`` a path that
    opens the same file for writing (for Rust, which writes path to path
    itself). With ``exclusive``, an existing ``path`` is never replaced: the
    commit raises :class:`FileExistsError`.
    """

    def __init__(self, path: PathLike, exclusive: bool = False):
        given = os.path.abspath(os.fspath(path))
        # Symbolic links followed, to a file that may not exist yet.
        self.path = given if _is_magic(given) else os.path.realpath(given)
        self.exclusive = exclusive
        self.tmp: Optional[str] = None  # the named fallback's path
        self._dirfd: Optional[int] = None
        self._existing: Optional[os.stat_result] = None
        self._in_place = False
        directory, self._name = os.path.split(self.path)
        try:
            st: Optional[os.stat_result] = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(f"{self.path} is a directory")
        if st is not None and exclusive:
            raise FileExistsError(self.path)
        if _is_magic(self.path) or (st is not None and not stat.S_ISREG(st.st_mode)):
            # A device, FIFO or socket: nothing to make atomic.
            self._in_place = True
            self.path = given
            self.file: Optional[BinaryIO] = open(given, "wb")
            self.write_path = given
            return
        if st is not None and not os.access(self.path, os.W_OK):
            # As cp, and the CLI: a file one may not write is not replaced.
            raise PermissionError(errno.EACCES, "the file is read-only for you", self.path)
        self._existing = st
        if os.name == "posix":  # to link into and to sync
            self._dirfd = os.open(directory, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        fd = None
        try:
            fd = _unnamed(directory) if self._dirfd is not None else None
            if fd is None:
                remove_stale(directory)
                fd, self.tmp = tempfile.mkstemp(
                    dir=directory, prefix=f".{self._name}.{os.getpid()}.", suffix=PARTIAL_SUFFIX
                )
                self.write_path = self.tmp
            else:
                self.write_path = _proc_fd(fd)
            self.file = os.fdopen(fd, "wb")
        except BaseException:
            if fd is not None:
                os.close(fd)
            if self.tmp is not None:
                os.unlink(self.tmp)
                self.tmp = None
            if self._dirfd is not None:
                os.close(self._dirfd)
                self._dirfd = None
            raise

    def _set_mode(self, fd: int) -> None:
        if not hasattr(os, "fchmod"):
            return
        old = self._existing
        if old is None:
            os.fchmod(fd, 0o666 & ~_UMASK)
            return
        # The old file's owner (where allowed: root, or a group of ours) and
        # permission bits, never set-user-ID or set-group-ID.
        if hasattr(os, "fchown"):
            try:
                os.fchown(fd, old.st_uid, old.st_gid)
            except OSError:
                try:
                    os.fchown(fd, -1, old.st_gid)
                except OSError:
                    pass
        os.fchmod(fd, stat.S_IMODE(old.st_mode) & 0o1777)

    def commit(self) -> None:
        """Syncs the file, gives it its name, and syncs the directory."""
        f = self.file
        assert f is not None
        if self._in_place:
            self.file = None
            f.close()
            return
        try:
            f.flush()
            fd = f.fileno()
            self._set_mode(fd)
            os.fsync(fd)
            if self.tmp is None:
                self._link_unnamed(fd)
            else:
                self._rename_named()
            # The new name is what a caller relies on.
            if self._dirfd is not None:
                os.fsync(self._dirfd)
        finally:
            self.discard()

    def _link(self, fd: int, name: str) -> None:
        # AT_SYMLINK_FOLLOW: the /proc link names the open file itself.
        os.link(_proc_fd(fd), name, dst_dir_fd=self._dirfd, follow_symlinks=True)

    def _link_unnamed(self, fd: int) -> None:
        try:
            self._link(fd, self._name)
            return
        except FileExistsError:
            if self.exclusive:
                raise
        # Replace: a hidden name for the two calls between link and rename.
        hidden = f".{self._name}.{os.getpid()}.{os.urandom(6).hex()}{PARTIAL_SUFFIX}"
        self._link(fd, hidden)
        try:
            os.replace(hidden, self._name, src_dir_fd=self._dirfd, dst_dir_fd=self._dirfd)
        except BaseException:
            try:
                os.unlink(hidden, dir_fd=self._dirfd)
            except OSError:
                pass
            raise

    def _rename_named(self) -> None:
        assert self.tmp is not None
        if self.exclusive:
            # A hard link never overwrites.
            os.link(self.tmp, self.path, follow_symlinks=False)
            os.unlink(self.tmp)
        else:
            os.replace(self.tmp, self.path)
        self.tmp = None

    def discard(self) -> None:
        """Ends without a file at ``path`` (after :meth:`commit`: closes)."""
        try:
            if self.file is not None:
                f, self.file = self.file, None
                try:
                    f.close()
                except OSError:
                    pass  # what it failed to write is discarded anyway
        finally:
            if self.tmp is not None:
                tmp, self.tmp = self.tmp, None
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
            if self._dirfd is not None:
                dirfd, self._dirfd = self._dirfd, None
                os.close(dirfd)
