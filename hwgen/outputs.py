"""What a command writes, and how: output paths checked before the work, atomic writes, folder locks.

The rules every command follows (docs/outputs.md says them for users):

* **Check before work.** An output path is checked before anything slow
  starts (:func:`check_output_file`, :func:`check_output_dir`): it must not be
  a directory (a file output) or a file (a folder output), must not be one of
  the command's inputs, and the nearest existing folder above it must accept
  a new file (probed by creating and deleting one: ``os.access`` says yes to
  root under ``/proc``). Missing folders are created only when the output is
  written.
* **Atomic writes.** A file is written to a temporary file in its folder and
  renamed over the old one (:func:`write_bytes_atomic`), so an interrupted
  command (Ctrl-C, a crash, a full disk) leaves the old file or the new one,
  never half of either, and no temporary file behind.
* **One writer per folder.** A command that writes into a build folder holds
  :func:`folder_lock` on it (an ``flock`` on ``FOLDER/.hwgen.lock``): a second
  writer is refused at once, with the first one's pid, instead of
  interleaving files; readers (``hwgen sim``) take the lock shared.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from hwgen.errors import HwgenError

__all__ = ["LOCK_NAME", "check_output_dir", "check_output_file", "folder_lock", "write_bytes_atomic",
           "write_text_atomic"]

LOCK_NAME = ".hwgen.lock"


def _nearest_existing(path: Path) -> Path:
    """``path`` or the closest folder above it that exists (``path`` made absolute first)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe_writable(folder: Path, option: str, target: Path) -> None:
    """HwgenError unless a file can be created (and is then deleted) in the existing ``folder``."""
    if not folder.is_dir():
        raise HwgenError(f"cannot write {option} {target}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".hwgen-probe-")
    except OSError as exc:
        raise HwgenError(f"cannot write {option} {target}: {folder} does not accept new files "
                         f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_file(path: str | os.PathLike, *, option: str = "-o",
                      inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """``Path(path)`` after checking, before any work, that a file can be written there.

    HwgenError ("cannot write -o X: ...") when ``path`` is a directory, is
    one of ``inputs`` (the same file, however spelled), or lies under a
    folder that does not accept new files (read-only, ``/proc``, a file in
    the way).
    """
    path = Path(path)
    if path.is_dir():
        raise HwgenError(f"cannot write {option} {path}: it is a directory (give a file name, e.g. {path}/out...)")
    for source in inputs:
        if _same_file(path, Path(source)):
            raise HwgenError(f"cannot write {option} {path}: it is this command's input {source}; "
                             f"choose another output name")
    _probe_writable(_nearest_existing(path.parent), option, path)
    return path


def check_output_dir(path: str | os.PathLike, *, option: str = "-o") -> Path:
    """``Path(path)`` after checking that it is, or can become, a folder that accepts files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise HwgenError(f"cannot write {option} {path}: it is a file, not a folder")
    _probe_writable(_nearest_existing(path), option, path)
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Creates missing parent folders. On any failure (or KeyboardInterrupt) the
    temporary file is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """:func:`write_bytes_atomic` of ``text`` in UTF-8."""
    write_bytes_atomic(path, text.encode())


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, *, shared: bool = False, what: str = "write") -> Iterator[Path]:
    """Hold an advisory lock on ``folder`` (created if missing) for the ``with`` block.

    Exclusive (a writer: ``hwgen build``, ``hwgen synth``) or ``shared``
    (a reader that must not see the folder change: ``hwgen sim``). A lock
    that another process holds is refused at once with HwgenError naming
    its pid; the lock is released when the block ends or the process dies.
    A reader of a folder where no lock file can be created (read-only) goes
    without one.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / LOCK_NAME
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if shared:  # a reader of a read-only folder: nobody can write it either
            yield folder
            return
        raise HwgenError(f"cannot {what} {folder}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise HwgenError(f"{folder} is in use by another hwgen command (pid {holder}); cannot {what} it "
                             f"until that one finishes (or use another folder)") from None
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield folder
    finally:
        os.close(fd)
