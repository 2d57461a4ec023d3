"""The Admin API client: the only module of orgaudit that imports httpx.

It speaks GET and nothing else: every request goes through :class:`GetOnlyTransport`,
which refuses any other method before a byte leaves the process.  It pages through both
cursor styles of the API, retries what is worth retrying, and turns every failure into
a one-line :mod:`orgaudit.errors` exception that never holds the admin key.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import ssl
import time
import urllib.request
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import certifi
import httpx

from orgaudit import __version__
from orgaudit.collect.scopes import parse_missing_scopes
from orgaudit.errors import (
    ApiError,
    AuthError,
    MalformedResponseError,
    OrgauditError,
    UnfinishedListError,
    UsageError,
)
from orgaudit.settings import AdminKey, ClientSettings, RetryPolicy

JsonObject = dict[str, Any]
QueryParams = Sequence[tuple[str, str]]

# Retried statuses follow the official Python SDK (openai/openai-python,
# src/openai/_base_client.py): 408, 409, 429 and 5xx.
RETRYABLE_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
ADMIN_KEYS_URL = "https://platform.openai.com/settings/organization/admin-keys"
# The Admin API's objects nest a handful of levels (a key's owner's user, an event's
# payload); an answer nested deeper than this is refused, not walked.
MAX_JSON_DEPTH = 64
# A page holds at most 100 items of a few dozen values each; 250,000 values (counted as
# the body's commas, braces and brackets, an upper bound) parse to at most about 60 MB of
# objects besides the body's own text, so no page under the size bound parses to more.
MAX_JSON_VALUES = 250_000
# Decompressed output is produced at most this much at a time, so a small compressed body
# that expands to gigabytes is refused at the size bound, never held whole.
_DECODE_STEP = 1 << 20


class ReadOnlyViolation(OrgauditError):
    """Something tried to send a request other than GET. A bug, never an input error."""


class PageStyle(Enum):
    """The two cursor styles of the Admin API (the OpenAPI document; docs/evidence.md)."""

    LAST_ID = "last_id"  # users, projects, keys, audit logs, ...: `last_id` + `has_more`
    NEXT = "next"  # RBAC lists (roles, groups, role assignments): `next` + `has_more`


@dataclass(frozen=True)
class ListEndpoint:
    """One list operation: its path template, cursor style and largest page size."""

    path: str
    style: PageStyle
    max_limit: int
    params: tuple[tuple[str, str], ...] = ()

    def format(self, **path_args: str) -> str:
        """The concrete path, with ``{project_id}`` and the like filled in, each escaped:
        an id from the API holding ``/`` or ``?`` stays one path segment."""
        return self.path.format(
            **{name: quote(value, safe="") for name, value in path_args.items()}
        )


@dataclass
class ClientStats:
    """Counters of what the client did; read by the pull summary and the benchmark."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    waited: float = 0.0  # seconds spent held back by "slow down" answers


def _ignore(*_args: object) -> None:
    pass


@dataclass(frozen=True)
class Progress:
    """What the client reports as it goes: each response, and each wait the server asks
    for ("rate limited (HTTP 429): waiting 4 s, 37 s waited so far")."""

    response: Callable[[], None] = _ignore
    waiting: Callable[[str], None] = _ignore
    notice: Callable[[str], None] = _ignore  # a one-off line for the user (a pull set aside)


QUIET = Progress()  # reports nothing


class WaitBudget:
    """The time a pull may spend held back by the server, counted once however many
    requests wait at the same moment (16 requests each told to wait 4 s cost 4 s)."""

    def __init__(self, limit: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.spent = 0.0
        self._clock = clock
        self._held_until = float("-inf")

    def take(self, delay: float) -> bool:
        """Charge a wait of ``delay`` seconds starting now; False if over the budget."""
        now = self._clock()
        extra = max(0.0, now + delay - max(now, self._held_until))
        if self.spent + extra > self.limit:
            return False
        self.spent += extra
        self._held_until = max(self._held_until, now + delay)
        return True


def retry_after_seconds(headers: httpx.Headers, now: float) -> float | None:
    """The delay a 429 or 5xx asks for, or None when it names none.

    ``Retry-After-Ms`` first, then ``Retry-After`` as seconds or an HTTP date, as the
    official Terraform provider and Python SDK read them (openai/terraform-provider-openai,
    openaiapi/client.go; openai/openai-python, src/openai/_base_client.py).
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class AdaptiveLimit:
    """How many requests may be in flight: additive increase, multiplicative decrease.

    It starts at the ceiling (``--concurrency``), halves on a 429 (once per window of
    requests, so a burst of 429s from one overload counts once), and grows by one after
    each window of successes, never above the ceiling: the user need not guess the right
    concurrency. A release wakes only as many waiters as may now run (thousands of queued
    requests must not all wake on every release).

    Waiters queue first in, first out, in two lanes: the next page of a list already
    being read goes before any first page. A list's pages can only be asked one after
    another, so a long list (500 pages of audit log) queued behind a thousand fan-out
    requests at every page would end the pull alone, with the other slots idle.
    """

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.lowest = ceiling
        self._in_flight = 0
        self._successes = 0
        self._since_cut = ceiling  # requests finished since the last cut
        self._next_pages: deque[asyncio.Future[None]] = deque()
        self._first_pages: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def slot(self, next_page: bool = False) -> AsyncIterator[None]:
        """Hold one of the allowed slots while the body runs."""
        await self._acquire(self._next_pages if next_page else self._first_pages)
        try:
            yield
        finally:
            self._since_cut += 1
            self._release()

    async def _acquire(self, lane: deque[asyncio.Future[None]]) -> None:
        if self._in_flight < self.limit and not self._next_pages and not self._first_pages:
            self._in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        lane.append(waiter)
        try:
            await waiter  # the slot was taken for us by _wake
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()
            raise

    def _release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._in_flight < self.limit and (self._next_pages or self._first_pages):
            waiter = (self._next_pages or self._first_pages).popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)

    def throttled(self) -> None:
        """A 429: halve the limit, unless it was just cut for the same overload."""
        if self._since_cut >= self.limit:
            self.limit = max(1, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self._since_cut = 0
        self._successes = 0

    def succeeded(self) -> None:
        """A success: after a window of them, allow one more request in flight."""
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.ceiling:
            self.limit += 1
            self._successes = 0
            self._wake()


class GetOnlyTransport(httpx.AsyncBaseTransport):
    """Wraps a transport and refuses every method but GET: read-only by construction."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            raise ReadOnlyViolation(
                f"refused to send {request.method} {request.url.path}: orgaudit only reads"
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class AdminClient:
    """An async, read-only Admin API client with paging, retries and bounded concurrency.

    Use it as ``async with AdminClient(key, settings) as client: ...``.
    """

    def __init__(
        self,
        key: AdminKey,
        settings: ClientSettings,
        *,
        progress: Progress = QUIET,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = key
        self._settings = settings
        self._progress = progress
        self._sleep = sleep
        self._slots = AdaptiveLimit(settings.concurrency)
        self._budget = WaitBudget(settings.retry.max_wait, clock)
        self.stats = ClientStats()
        self._http = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {key.reveal()}",
                "User-Agent": f"orgaudit/{__version__}",
                "Accept": "application/json",
                # Only what the client decodes itself, with a bound (see _send).
                "Accept-Encoding": "gzip",
            },
            timeout=httpx.Timeout(settings.timeout),
            transport=GetOnlyTransport(
                httpx.AsyncHTTPTransport(
                    limits=httpx.Limits(
                        max_connections=settings.concurrency,
                        max_keepalive_connections=settings.concurrency,
                    ),
                    verify=tls_context(settings.trust_env),
                    proxy=proxy_for(settings.base_url) if settings.trust_env else None,
                )
            ),
            follow_redirects=False,
            trust_env=False,  # proxies and CA files are read above, once, explicitly
        )

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def list_all(
        self, endpoint: ListEndpoint, path: str, extra_params: QueryParams = ()
    ) -> list[JsonObject]:
        """Every item of a list, in memory (see :meth:`read_pages`)."""
        items: list[JsonObject] = []
        await self.read_pages(endpoint, path, extra_params, items.extend)
        return items

    async def read_pages(
        self,
        endpoint: ListEndpoint,
        path: str,
        extra_params: QueryParams,
        on_page: Callable[[list[JsonObject]], None],
    ) -> None:
        """Read a list a page at a time, following its cursor until ``has_more`` is false;
        each page goes to ``on_page`` as it arrives and is not kept.

        A page of the wrong shape raises :class:`MalformedResponseError`, and paging that
        cannot be followed (no cursor, a cursor that repeats, too many pages)
        :class:`UnfinishedListError`, naming the endpoint, so a lying server can never
        make the pull loop for ever.
        """
        seen_cursors: set[str] = set()
        cursor: str | None = None
        for _ in range(self._settings.max_pages):
            params = [*endpoint.params, *extra_params, ("limit", str(endpoint.max_limit))]
            if cursor is not None:
                params.append(("after", cursor))
            body = await self.get_json(path, params, next_page=cursor is not None)
            data, has_more, next_cursor = _read_page(body, endpoint.style, path)
            if len(data) > endpoint.max_limit:
                raise MalformedResponseError(
                    f"GET {path}: a page holds {len(data)} items, more than the "
                    f"{endpoint.max_limit} asked for; refused"
                )
            on_page(data)  # the caller starts on a page's items at once
            if not has_more:
                return
            if not next_cursor:
                raise UnfinishedListError(
                    f"GET {path}: has_more is true but the page gives no cursor to go on from"
                )
            if next_cursor in seen_cursors:
                raise UnfinishedListError(
                    f"GET {path}: the cursor {self._scrub(next_cursor)[:80]!r} repeats; the "
                    "server's paging does not advance"
                )
            seen_cursors.add(next_cursor)
            cursor = next_cursor
        raise UnfinishedListError(
            f"GET {path}: more than {self._settings.max_pages} pages (--max-pages); refused"
        )

    async def get_json(
        self, path: str, params: QueryParams = (), *, next_page: bool = False
    ) -> JsonObject:
        """One GET, retried per the policy, returning the JSON object it answered.

        ``next_page`` marks a later page of a list being read; it waits in the faster lane.
        """
        policy = self._settings.retry
        last_problem = "no attempt made"
        last_status: int | None = None
        failures = 0  # answers that count against max_attempts ("slow down" does not)
        slowed = 0
        while True:
            delay: float | None = None
            slow_down = False
            try:
                async with self._slots.slot(next_page):
                    # The timeout bounds the whole response, not each read: a server
                    # that trickles a byte at a time cannot hold a request for ever.
                    async with asyncio.timeout(self._settings.timeout):
                        status, headers, body = await self._send(path, params)
            except (httpx.TimeoutException, TimeoutError):
                last_problem = f"timed out after {self._settings.timeout:g} s"
            except _BodyTooLarge:
                raise MalformedResponseError(
                    f"GET {path}: the response is larger than "
                    f"{self._settings.max_body_bytes} bytes (--max-body-mb); refused"
                ) from None
            except _BadEncoding as exc:
                raise MalformedResponseError(f"GET {path}: {exc}; refused") from None
            except httpx.TransportError as exc:
                refused = _certificate_refusal(exc)
                if refused is not None:  # not transient: retrying cannot help
                    raise ApiError(
                        f"GET {path}: the server's TLS certificate was refused ({refused}); "
                        "if a proxy re-signs TLS, point SSL_CERT_FILE at its CA bundle"
                    ) from None
                last_problem = f"connection failed ({type(exc).__name__})"
            else:
                if status == 200:
                    parsed = _parse_json(body, path)
                    if parsed is None:
                        last_problem = "the response is not JSON"
                    else:
                        self._slots.succeeded()
                        return parsed
                elif status in RETRYABLE_STATUSES:
                    delay = retry_after_seconds(headers, time.time())
                    # 429, or 503 naming a delay, means "slow down", not "broken".
                    slow_down = status == 429 or (status == 503 and delay is not None)
                    if status == 429:
                        self.stats.throttled += 1
                        self._slots.throttled()
                    last_problem, last_status = f"HTTP {status}", status
                    if delay is not None and delay > policy.max_retry_after:
                        raise ApiError(
                            f"GET {path}: HTTP {status} asks to wait {delay:.0f} s, longer than "
                            f"{policy.max_retry_after:.0f} s; try again later",
                            status=status,
                        )
                else:
                    raise self._status_error(path, status, body)
            if slow_down:
                slowed += 1
                if delay is None:
                    delay = _backoff(policy, slowed)
                if not self._budget.take(delay):
                    raise ApiError(
                        f"GET {path}: still {_slow_down_text(last_status)} after "
                        f"{self._budget.spent:.0f} s of waiting in all (--max-wait "
                        f"{policy.max_wait:.0f} s); try again later",
                        status=last_status,
                    )
                self.stats.waited = self._budget.spent
                self._progress.waiting(
                    f"{_slow_down_text(last_status)}: waiting {delay:.0f} s, "
                    f"{self._budget.spent:.0f} s waited so far"
                )
            else:
                failures += 1
                if failures >= policy.max_attempts:
                    break
                if delay is None:
                    delay = _backoff(policy, failures)
            self.stats.retries += 1
            await self._sleep(delay)
        if last_problem == "the response is not JSON":
            raise MalformedResponseError(
                f"GET {path}: the response is not JSON ({policy.max_attempts} attempts)"
            )
        raise ApiError(
            f"GET {path} failed after {policy.max_attempts} attempts: {last_problem} "
            f"(base URL {self._settings.base_url})",
            status=last_status,
        )

    async def _send(self, path: str, params: QueryParams) -> tuple[int, httpx.Headers, bytes]:
        """Send one GET and read its body, refusing bodies beyond ``max_body_bytes``.

        The body is decoded here, not by httpx, and counted as it is decoded: only
        identity and one gzip are accepted, and decompression runs a bounded step at a
        time, so neither a stacked coding nor a gzip bomb can be inflated past the bound.
        """
        async with self._http.stream("GET", path, params=list(params)) as response:
            body = _BoundedBody(
                response.headers.get("content-encoding", ""), self._settings.max_body_bytes
            )
            async for chunk in response.aiter_raw():
                body.feed(chunk)
            chunks = body.finish()
        self.stats.requests += 1
        self.stats.statuses[response.status_code] += 1
        self._progress.response()
        return response.status_code, response.headers, b"".join(chunks)

    def _status_error(self, path: str, status: int, body: bytes) -> ApiError:
        """A one-line error for a non-retryable status, with the key scrubbed out."""
        message = _error_message(body, self._scrub)
        said = f": {message}" if message else ""
        scopes = parse_missing_scopes(message)
        if status in (401, 403) and scopes:
            return AuthError(
                f"GET {path}: the admin key lacks the permission {', '.join(scopes)} "
                f"(HTTP {status}). Create a read-only admin key (permission 'Read only', or "
                f"'Restricted' with Organization Administration: Read) at {ADMIN_KEYS_URL}",
                status=status,
                missing_scopes=scopes,
            )
        if status == 401:
            return AuthError(
                f"GET {path}: the admin key was refused (HTTP 401{said}); check "
                f"OPENAI_ADMIN_KEY or the key file, and that it is an admin key (sk-admin-...) "
                f"from {ADMIN_KEYS_URL}",
                status=status,
            )
        if status == 403:
            return AuthError(f"GET {path}: forbidden (HTTP 403{said})", status=status)
        return ApiError(f"GET {path}: HTTP {status}{said}", status=status)

    def _scrub(self, text: str) -> str:
        """Remove the admin key from text that came from outside, before it is shown."""
        return text.replace(self._key.reveal(), self._key.redacted)


def _backoff(policy: RetryPolicy, attempt: int) -> float:
    """Capped exponential backoff with full jitter, for the ``attempt``-th retry."""
    return random.uniform(0, min(policy.max_delay, policy.base_delay * 2 ** min(attempt - 1, 30)))


def _slow_down_text(status: int | None) -> str:
    return "rate limited (HTTP 429)" if status == 429 else f"told to slow down (HTTP {status})"


class _BodyTooLarge(Exception):
    pass


class _BadEncoding(Exception):
    pass


class _BoundedBody:
    """A response body decoded (identity or one gzip) and counted as it arrives."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        coding = content_encoding.strip().lower()
        if coding not in ("", "identity", "gzip"):
            raise _BadEncoding(f"the response's Content-Encoding {coding[:40]!r} is not accepted")
        self._gzip = zlib.decompressobj(16 + zlib.MAX_WBITS) if coding == "gzip" else None
        self._limit = limit
        self._size = 0
        self._chunks: list[bytes] = []

    def _keep(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._size > self._limit:
            raise _BodyTooLarge
        self._chunks.append(piece)

    def feed(self, raw: bytes) -> None:
        """Take the next raw bytes off the wire."""
        if self._gzip is None:
            self._keep(raw)
            return
        data = raw
        while data:
            try:
                self._keep(self._gzip.decompress(data, _DECODE_STEP))
            except zlib.error:
                raise _BadEncoding("the response's gzip body is corrupt") from None
            if self._gzip.eof and self._gzip.unused_data:
                raise _BadEncoding("the response holds data after its gzip body")
            data = self._gzip.unconsumed_tail

    def finish(self) -> list[bytes]:
        """The decoded body's chunks; a gzip body must have ended."""
        if self._gzip is not None and not self._gzip.eof:
            raise _BadEncoding("the response's gzip body is cut short")
        return self._chunks


def _parse_json(body: bytes, path: str) -> JsonObject | None:
    """A page's JSON object; None if the body is not JSON (worth another try).

    JSON nested beyond :data:`MAX_JSON_DEPTH`, holding more than :data:`MAX_JSON_VALUES`
    values, or with a number too long to convert, is a hostile or broken answer, not a bug
    of ours: refused with one line, not retried.
    """
    values = body.count(b",") + body.count(b"{") + body.count(b"[")
    if values > MAX_JSON_VALUES:  # counted before parsing: the objects are never made
        raise MalformedResponseError(
            f"GET {path}: the response holds more than {MAX_JSON_VALUES} JSON values; refused"
        )
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    except (RecursionError, ValueError):  # deep nesting; Python's limit on digits
        raise MalformedResponseError(
            f"GET {path}: the response is nested too deeply or holds a number too long to "
            "read; refused"
        ) from None
    if not isinstance(parsed, dict):
        raise MalformedResponseError(f"GET {path}: the response is JSON but not an object")
    if _depth_exceeds(parsed, MAX_JSON_DEPTH):
        raise MalformedResponseError(
            f"GET {path}: the response nests deeper than {MAX_JSON_DEPTH} levels; refused"
        )
    return parsed


def _depth_exceeds(value: object, limit: int) -> bool:
    """Whether JSON nests deeper than ``limit`` (walked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def tls_context(trust_env: bool) -> ssl.SSLContext:
    """The certificates a TLS server is checked against: ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` where set (a company's CA, a re-signing proxy), else certifi's."""
    cafile = os.environ.get("SSL_CERT_FILE") if trust_env else None
    capath = os.environ.get("SSL_CERT_DIR") if trust_env else None
    try:
        if cafile or capath:
            return ssl.create_default_context(cafile=cafile or None, capath=capath or None)
        return ssl.create_default_context(cafile=certifi.where())
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"cannot load the CA certificates named by SSL_CERT_FILE/SSL_CERT_DIR: {exc}"
        ) from None


def proxy_for(base_url: str) -> str | None:
    """The proxy the standard variables name for ``base_url`` (``HTTPS_PROXY``,
    ``HTTP_PROXY``, ``ALL_PROXY``, less the hosts ``NO_PROXY`` lists), or None."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    # The standard library's NO_PROXY matcher (documented in urllib.request's source,
    # absent from its type stubs).
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxy or bypass(parts.hostname or "", proxies):
        return None
    return proxy


def _certificate_refusal(exc: BaseException) -> str | None:
    """Why a TLS certificate was refused, if that is what failed the connection."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for link in chain:
        if isinstance(link, ssl.SSLCertVerificationError):
            return link.verify_message or "verification failed"
    if any("CERTIFICATE_VERIFY_FAILED" in str(link) for link in chain):
        return "certificate verify failed"
    return None


def _error_message(body: bytes, scrub: Callable[[str], str]) -> str:
    """The message of an API error body, scrubbed, on one line, cut to 300 characters.

    Two shapes are read: the spec's ``{"error": {"message": ...}}`` and a bare string,
    ``{"error": "... Missing scopes: api.model.read ..."}``, which a real answer has been
    seen to carry (community.openai.com thread 1345041; docs/evidence.md#forum-bare-error).
    Scrubbing comes first: cutting first could split the key so it is
    no longer found.
    """
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return ""
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str):
        return ""
    one_line = " ".join(scrub(message).split())
    return one_line[:300]


def _read_page(
    body: JsonObject, style: PageStyle, path: str
) -> tuple[list[JsonObject], bool, str | None]:
    """Check a list page's shape and return its items, ``has_more`` and next cursor."""
    data = body.get("data")
    has_more = body.get("has_more")
    if body.get("object") != "list" or not isinstance(data, list) or not isinstance(has_more, bool):
        raise MalformedResponseError(
            f"GET {path}: the page is not a list object with 'data' and 'has_more'"
        )
    if not all(isinstance(item, dict) for item in data):
        raise MalformedResponseError(f"GET {path}: the page holds items that are not objects")
    if style is PageStyle.NEXT:
        cursor = body.get("next")
    else:
        # Style A names the cursor `last_id`; the SDK's admin-keys page reads data[-1].id
        # instead, so fall back to it when last_id is absent (openai/openai-python).
        cursor = body.get("last_id")
        if cursor is None and data:
            cursor = data[-1].get("id")
    if cursor is not None and not isinstance(cursor, str):
        raise MalformedResponseError(f"GET {path}: the page's cursor is not a string")
    return data, has_more, cursor
