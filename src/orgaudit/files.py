"""Files orgaudit writes: owner-only, never through a symbolic link, whole or not at all.

Reports and query results hold the org's names and e-mail addresses. Each is written to
a new temporary file beside its target (created exclusively, mode 600) and renamed over
it once complete, so a full disk, a crash or Ctrl-C leaves the old file or nothing, never
a part; a rename replaces a link planted at the target rather than writing through it,
and a target that is a link is refused outright. Folders orgaudit creates are mode 700.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orgaudit.errors import UsageError, WriteError


def refuse_link(path: Path) -> None:
    """Refuse a path that is a symbolic link: what it points at is not orgaudit's to write."""
    if path.is_symlink():
        raise UsageError(
            f"{path} is a symbolic link; orgaudit does not write through one (remove it, or "
            "choose another path)"
        )


def private_folder(folder: Path) -> Path:
    """``folder``, created with its missing parents as mode 700 if it does not exist."""
    refuse_link(folder)
    missing = []
    level = folder
    while not level.exists() and level != level.parent:
        missing.append(level)
        level = level.parent
    try:
        for created in reversed(missing):
            created.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create the folder {folder}: {_reason(exc)}") from None
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    return folder


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a new owner-only temporary file beside ``path`` to write in full; it is then
    renamed over ``path``, or removed if anything failed (the error says why, exit 3)."""
    refuse_link(path)
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {_reason(exc)}") from None
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise WriteError(f"cannot write {path}: {_reason(exc)}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_regular_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of an input file (``what`` names it in errors), read once, at most
    ``limit + 1`` of them: more than ``limit`` tells the caller the file is too large.

    Only a regular file is read: a FIFO, a device or a folder is refused at once (opened
    without waiting for a writer, never read).
    """
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"cannot read {what} {path}: it is not a regular file")
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {_reason(exc)}") from None
    finally:
        os.close(fd)


def write_private_text(path: Path, text: str) -> Path:
    """Write text to ``path``, owner-only and whole (see :func:`replacing`)."""
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8", newline="")
    return path


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
