"""The one exception family of orgaudit, and the exit code each member maps to.

    OrgauditError                      (never raised itself)
    ├── UsageError            exit 2   bad option, unreadable key file, unknown snapshot
    │   └── ConfigError       exit 2   broken configuration or catalog
    └── CollectError          exit 3   the pull could not complete
        ├── ApiError          exit 3   an HTTP error that retries did not cure
        │   └── AuthError     exit 3   the admin key was refused, or lacks a permission
        ├── MalformedResponseError
        │                     exit 3   a body that is not the documented shape, a cursor that
        │                              does not advance
        └── StoreError        exit 3   the snapshot could not be written
    WriteError                exit 3   a report or output file could not be written

Every message is one line, is fit to show to a user as it is, and never holds the admin key.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes shared by every command (documented in the README)."""

    OK = 0
    FINDINGS = 1
    USAGE = 2
    COLLECT = 3
    WRITE = 3  # the same code: a file could not be written (a full disk, a lost mount)
    INTERNAL = 4
    INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report it


class OrgauditError(Exception):
    """Base of every error orgaudit reports to its user."""

    exit_code: ExitCode = ExitCode.INTERNAL


class UsageError(OrgauditError):
    """Bad usage or input: options, files, names that do not exist."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A configuration or catalog file that cannot be read or is malformed."""


class WriteError(OrgauditError):
    """An output file could not be written; the file it would replace is as it was."""

    exit_code = ExitCode.WRITE


class CollectError(OrgauditError):
    """The data could not be collected; no snapshot was written."""

    exit_code = ExitCode.COLLECT


class ApiError(CollectError):
    """An HTTP failure that the retry policy could not cure.

    ``status`` is the last HTTP status (None for a network failure); ``missing_scopes``
    holds the scopes an error body named as missing.
    """

    def __init__(
        self, message: str, *, status: int | None = None, missing_scopes: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.missing_scopes = missing_scopes


class AuthError(ApiError):
    """The admin key was refused, or lacks a permission that a source needs."""


class MalformedResponseError(CollectError):
    """A response that is not the documented shape, or a cursor that does not advance."""


class UnfinishedListError(MalformedResponseError):
    """A list whose pages cannot be followed to the end: ``has_more`` with no cursor, a
    cursor that repeats, more pages than ``--max-pages``. What was read before is sound."""


class Interrupted(OrgauditError):
    """The user interrupted the command (Ctrl-C)."""

    exit_code = ExitCode.INTERRUPTED


class StoreError(CollectError):
    """The snapshot database could not be written or read."""
