"""Writing a step's files into the evidence pack all together, or not at all.

Each file is written in full beside its final name first (owner-only); the step then
stores its records, and only after that are the files moved into place, together. A step
that fails before that leaves the pack exactly as it was, the earlier steps' files
included, so the pack and the database agree. One window remains: a rename that fails
after the records are stored (renames within one folder, so rare). The error names the
file; the database then holds the step, with the SHA-256 of each file it meant to place
(``review_files``), and the pack lacks the file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from orgaudit.errors import WriteError
from orgaudit.files import refuse_link
from orgaudit.review.campaign import utc_text


class Stage:
    """The files one step writes, staged until :meth:`place`."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []  # (staged file, its final path)

    def write(self, target: Path, fill: Callable[[Path], object]) -> Path:
        """Stage ``target``: ``fill`` writes the whole file at the path it is given."""
        refuse_link(target)
        try:
            handle, name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".part", dir=target.parent
            )
        except OSError as exc:
            raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from None
        os.close(handle)
        staged = Path(name)
        self._staged.append((staged, target))
        try:
            fill(staged)
        except OSError as exc:
            raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from None
        return target

    def text(self, target: Path, text: str) -> Path:
        """Stage a text file (UTF-8)."""
        return self.write(target, lambda path: path.write_text(text, encoding="utf-8"))

    def data(self, target: Path, data: bytes) -> Path:
        """Stage a file of bytes."""
        return self.write(target, lambda path: path.write_bytes(data))

    def records(self, campaign_id: str, stage: str, now: datetime) -> list[dict[str, object]]:
        """The review_files rows of the files staged so far (their SHA-256 as placed)."""
        return [
            {
                "campaign_id": campaign_id,
                "stage": stage,
                "written_at": utc_text(now),
                "name": target.name,
                "sha256": hashlib.sha256(staged.read_bytes()).hexdigest(),
            }
            for staged, target in self._staged
        ]

    def read(self, target: Path) -> bytes:
        """A staged file's bytes."""
        return next(s for s, t in self._staged if t == target).read_bytes()

    def sha256(self, target: Path) -> str:
        """The SHA-256 of a staged file."""
        return hashlib.sha256(self.read(target)).hexdigest()

    def place(self) -> tuple[Path, ...]:
        """Move every staged file to its final name; the paths placed."""
        placed = []
        try:
            for staged, target in self._staged:
                os.replace(staged, target)
                placed.append(target)
        except OSError as exc:
            raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from None
        self._staged = []
        return tuple(placed)

    def discard(self) -> None:
        """Remove every staged file not yet placed."""
        for staged, _target in self._staged:
            staged.unlink(missing_ok=True)
        self._staged = []


@contextmanager
def staged() -> Iterator[Stage]:
    """A stage whose files are removed if the step fails before it places them."""
    stage = Stage()
    try:
        yield stage
    finally:
        stage.discard()
