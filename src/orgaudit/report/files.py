"""Report files are created readable by their owner only: they hold e-mail addresses."""

from __future__ import annotations

import os
from pathlib import Path

from orgaudit.errors import UsageError


def create_private(path: Path) -> Path:
    """Create (or truncate) ``path`` with mode 600 before anything is written to it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
        os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    return path


def write_private_text(path: Path, text: str) -> None:
    """Write text to an owner-only file."""
    create_private(path).write_text(text, encoding="utf-8", newline="")
