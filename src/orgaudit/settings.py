"""Frozen settings built from options and the environment.

The admin key travels as an :class:`AdminKey`, whose ``repr`` and ``str`` show only a
redacted form, so that no log line, exception or traceback can print it by accident.
"""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from orgaudit.errors import UsageError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_DB_PATH = Path("reports") / "orgaudit.db"
ADMIN_KEY_ENV = "OPENAI_ADMIN_KEY"
DB_ENV = "ORGAUDIT_DB"
MIB = 1024 * 1024
DEFAULT_MAX_BODY_MB = 16  # a real page is under 1 MB


class AdminKey:
    """An admin API key that never shows itself.

    The secret is reachable only through :meth:`reveal`, which the client calls once
    to build its ``Authorization`` header.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        secret = secret.strip()
        if not secret:
            raise UsageError("the admin key is empty")
        if any(ch.isspace() for ch in secret):
            raise UsageError("the admin key contains white space; check the key file")
        if not all("!" <= ch <= "~" for ch in secret):  # a NUL would reach the header
            raise UsageError(
                "the admin key holds a character no key has (a control character or one that "
                "is not ASCII); check the key file or OPENAI_ADMIN_KEY"
            )
        self._secret = secret

    def reveal(self) -> str:
        """The secret itself, for the Authorization header and nothing else."""
        return self._secret

    @property
    def redacted(self) -> str:
        """``sk-admin...`` and the last four characters, the only form ever shown."""
        return f"{self._secret[:8]}...{self._secret[-4:]}" if len(self._secret) > 16 else "***"

    def __repr__(self) -> str:
        return f"AdminKey({self.redacted})"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:  # pickling would write the secret
        raise TypeError("an AdminKey cannot be pickled")


# Where a redacted key value hides the middle of the key (API reference: the project API
# key object's redacted_value, "sk-abc...def").
REDACTION = "..."
MAX_KEY_VALUE_BYTES = 1024  # a key is about 200 characters; anything far longer is not one
# A whole key is far longer than its redacted form shows (its start and its last few
# characters): a shorter value would fit keys it is not.
MIN_WHOLE_KEY = 32


def _unwrapped(value: str) -> str:
    """The key in what was pasted with it: ``NAME=`` before it (a line of an env file), and
    the quotes around it."""
    name, equals, rest = value.partition("=")
    if equals and name and all(ch.isalnum() or ch == "_" for ch in name):
        value = rest.strip()
    return value.strip("'\"`")


class KeyValue:
    """An API key's value a user pasted to trace it (a leaked key, or its redacted form).

    Like :class:`AdminKey` it never shows itself: no ``repr``, ``str``, pickle, log line or
    error holds it; it is only compared with the redacted values a snapshot stores.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = _unwrapped(value.strip())
        if not value:
            raise UsageError("no key value on standard input; paste the key, then end the input")
        if not value.startswith("sk-"):
            raise UsageError(
                "that does not look like an OpenAI key (they start with sk-); paste the key, "
                "or its redacted form, alone"
            )
        if any(ch.isspace() for ch in value) or not all("!" <= ch <= "~" for ch in value):
            raise UsageError(
                "the key value holds white space, a control character or one that is not "
                "ASCII; a key has none (paste the key alone, on one line)"
            )
        prefix, _, suffix = value.partition(REDACTION)
        if REDACTION in value and (len(suffix) < 3 or len(prefix) < 3):
            raise UsageError(
                "the redacted value shows too little of the key to tell it apart (at least "
                "three characters before and after the '...')"
            )
        if REDACTION not in value and len(value) < MIN_WHOLE_KEY:
            raise UsageError(
                f"that is too short to be a whole key (under {MIN_WHOLE_KEY} characters); "
                "paste the whole key, or its redacted form with the '...'"
            )
        self._value = value

    def matches(self, redacted: str) -> bool:
        """Whether a key with this redacted value could be this key (a full value: its
        start and end are the redacted value's; a redacted one: the shown parts agree)."""
        shown_start, cut, shown_end = redacted.partition(REDACTION)
        if not cut:
            return False
        start, redacted_here, end = self._value.partition(REDACTION)
        if not redacted_here:  # the whole key
            long_enough = len(self._value) > len(shown_start) + len(shown_end)
            return (
                long_enough
                and self._value.startswith(shown_start)
                and self._value.endswith(shown_end)
            )
        agree_start = shown_start.startswith(start) or start.startswith(shown_start)
        agree_end = shown_end.endswith(end) or end.endswith(shown_end)
        return agree_start and agree_end

    def __repr__(self) -> str:
        return "KeyValue(***)"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:  # pickling would write the value
        raise TypeError("a KeyValue cannot be pickled")


def read_key_value(data: bytes) -> KeyValue:
    """The key value in what standard input gave (bounded, ASCII, one line)."""
    if len(data) > MAX_KEY_VALUE_BYTES:
        raise UsageError(
            f"more than {MAX_KEY_VALUE_BYTES:,} bytes on standard input; paste the key alone"
        )
    try:
        text = data.removeprefix(codecs.BOM_UTF8).decode("ascii")
    except UnicodeDecodeError:
        raise UsageError("the key value holds a byte that is not ASCII; a key has none") from None
    return KeyValue(text)


# A key file holds one key, on one line: anything larger is not a key file.
MAX_KEY_FILE_BYTES = 4096


def load_admin_key(
    key_file: Path | None,
    environ: Mapping[str, str] | None = None,
    *,
    strict: bool = False,
    warn: Callable[[str], None] = lambda _text: None,
) -> AdminKey:
    """Read the admin key from ``key_file`` if given, else from ``OPENAI_ADMIN_KEY``.

    A key is never accepted as a command-line value, so it never lands in shell history
    or in the process list. The key file is checked as ssh checks a private key (see
    :func:`read_key_file`).
    """
    env = os.environ if environ is None else environ
    if key_file is not None:
        return AdminKey(read_key_file(key_file, strict=strict, warn=warn))
    value = env.get(ADMIN_KEY_ENV, "")
    if not value.strip():
        raise UsageError(
            f"no admin key: set {ADMIN_KEY_ENV} or pass --admin-key-file PATH "
            "(a read-only admin key is enough)"
        )
    return AdminKey(value)


def read_key_file(path: Path, *, strict: bool, warn: Callable[[str], None]) -> str:
    """The one line of a key file, checked before it is read, as ssh checks a private key.

    Only a regular file of at most :data:`MAX_KEY_FILE_BYTES` is read (a FIFO, a device
    or a folder is refused at once, never waited on or read whole); it must hold one line
    of ASCII (a UTF-8 byte-order mark, as some editors write, is allowed). A file that
    others may read or write is said (``warn``), or refused when ``strict``.
    """
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot read the admin key file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(
                f"the admin key file {path} is {_file_kind(info.st_mode)}, not a regular file"
            )
        data = os.read(fd, MAX_KEY_FILE_BYTES + 1) if info.st_size <= MAX_KEY_FILE_BYTES else b""
    except OSError as exc:
        raise UsageError(f"cannot read the admin key file {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if info.st_size > MAX_KEY_FILE_BYTES or len(data) > MAX_KEY_FILE_BYTES:
        raise UsageError(
            f"the admin key file {path} is {info.st_size:,} bytes; a key file holds one key, "
            f"on one line (at most {MAX_KEY_FILE_BYTES:,} bytes)"
        )
    if info.st_mode & 0o077:
        said = (
            f"the admin key file {path} can be read or written by others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); `chmod 600 {path}`"
        )
        if strict:
            raise UsageError(f"{said} (refused: --strict)")
        warn(f"warning: {said}")
    try:
        text = data.removeprefix(codecs.BOM_UTF8).decode("ascii")
    except UnicodeDecodeError:
        raise UsageError(
            f"the admin key file {path} holds a byte that is not ASCII; it must hold the key "
            "alone, on one line"
        ) from None
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise UsageError(
            f"the admin key file {path} holds {len(lines)} lines of text; it must hold the "
            "key alone, on one line"
        )
    return lines[0]


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))
    devices = stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
    return next((kind for test, kind in kinds if test(mode)), "a device" if devices else "special")


def resolve_db_path(db: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """``--db`` if given, else ``ORGAUDIT_DB``, else ``reports/orgaudit.db``."""
    env = os.environ if environ is None else environ
    if db is not None:
        return db
    if env.get(DB_ENV):
        return Path(env[DB_ENV])
    return DEFAULT_DB_PATH


@dataclass(frozen=True)
class RetryPolicy:
    """How the client retries: capped exponential backoff with full jitter.

    ``max_retry_after`` follows the official Python SDK, which gives up rather than
    wait longer than the server asks for beyond two minutes (openai/openai-python,
    MAX_RETRY_AFTER_DELAY).
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 120.0
    # "Slow down" answers (429, and 503 with Retry-After) are not counted against
    # max_attempts: they are waited out for as long as this budget of waiting allows, in
    # wall-clock seconds for the whole pull (overlapping waits count once).
    max_wait: float = 600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise UsageError("the number of attempts must be at least 1")
        if self.max_wait < 0:
            raise UsageError("--max-wait must not be negative")


@dataclass(frozen=True)
class ClientSettings:
    """Everything the Admin API client needs besides the key."""

    base_url: str = DEFAULT_BASE_URL
    concurrency: int = 16
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Resource bounds: a body larger than this is refused before it is parsed, and a list
    # longer than this many pages is refused, so a hostile or broken server cannot
    # exhaust memory or keep a pull going for ever.
    max_body_bytes: int = DEFAULT_MAX_BODY_MB * MIB
    max_pages: int = 10_000
    # Honour the standard proxy variables and SSL_CERT_FILE/SSL_CERT_DIR. The built-in
    # demo, which talks only to its own loopback simulator, turns it off.
    trust_env: bool = True

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise UsageError(
                f"--base-url must start with http:// or https://, got {self.base_url!r}"
            )
        if not all(" " < char <= "~" for char in self.base_url):
            raise UsageError(
                "--base-url holds a space, a control character or one that is not ASCII; "
                "a URL has none"
            )
        try:
            parts = urlsplit(self.base_url)
            host, _port = parts.hostname or "", parts.port
        except ValueError as exc:  # an unclosed IPv6 bracket, a port that is no number
            raise UsageError(f"--base-url is not a URL: {exc}") from None
        if self.base_url.startswith("http://") and host not in ("127.0.0.1", "localhost", "::1"):
            raise UsageError("--base-url must use https:// (plain http only on loopback)")
        if not 1 <= self.concurrency <= 256:
            raise UsageError("--concurrency must be between 1 and 256")
        if self.timeout <= 0:
            raise UsageError("--timeout must be positive")
        if self.max_body_bytes < 1024 or self.max_pages < 1:
            raise UsageError("--max-body-mb and --max-pages must be positive")


@dataclass(frozen=True)
class PullSettings:
    """What a pull collects besides the client's settings."""

    audit_days: int = 180
    # Days of usage and costs read (the Usage and Costs APIs); 0 reads none.
    usage_days: int = 30
    # Leave out per-user role lists whose answer the role lists already give (pull.py
    # says when); False asks every one, for an audit that wants each list read.
    derive_role_lists: bool = True
    # A list that cannot be finished (a server error that outlasts the retries, a 400 or
    # 404 on one project's list, paging that cannot be followed) is kept as far as it was
    # read and recorded as a gap; strict makes it end the pull instead.
    strict: bool = False
    # Continue the unfinished pull the journal holds (pull --resume), instead of a new one.
    resume: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.audit_days <= 3650:
            raise UsageError("--audit-days must be between 0 and 3650")
        if not 0 <= self.usage_days <= 366:
            raise UsageError("--usage-days must be between 0 and 366")
