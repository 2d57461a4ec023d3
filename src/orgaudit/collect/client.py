"""The Admin API client: the only module of orgaudit that imports httpx.

It speaks GET and nothing else: every request goes through :class:`GetOnlyTransport`,
which refuses any other method before a byte leaves the process.  It pages through both
cursor styles of the API, retries what is worth retrying, and turns every failure into
a one-line :mod:`orgaudit.errors` exception that never holds the admin key.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import ssl
import time
import urllib.request
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx

from orgaudit import __version__
from orgaudit.collect.answers import (
    BadEncoding,
    BodyTooLarge,
    BoundedBody,
    JsonObject,
    ListEndpoint,
    error_message,
    parse_json,
    read_page,
)
from orgaudit.collect.pacing import QUIET, AdaptiveLimit, ClientStats, Progress, WaitBudget, backoff
from orgaudit.collect.scopes import parse_missing_scopes
from orgaudit.errors import (
    ApiError,
    AuthError,
    MalformedResponseError,
    OrgauditError,
    UnfinishedListError,
    UsageError,
)
from orgaudit.settings import AdminKey, ClientSettings

QueryParams = Sequence[tuple[str, str]]

# Retried statuses follow the official Python SDK (openai/openai-python,
# src/openai/_base_client.py): 408, 409, 429 and 5xx.
RETRYABLE_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
ADMIN_KEYS_URL = "https://platform.openai.com/settings/organization/admin-keys"


class ReadOnlyViolation(OrgauditError):
    """Something tried to send a request other than GET. A bug, never an input error."""


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
                params.append((endpoint.style.cursor_param, cursor))
            body = await self.get_json(path, params, next_page=cursor is not None)
            data, has_more, next_cursor = read_page(body, endpoint.style, path, endpoint.max_limit)
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
            except BodyTooLarge:
                raise MalformedResponseError(
                    f"GET {path}: the response is larger than "
                    f"{self._settings.max_body_bytes} bytes (--max-body-mb); refused"
                ) from None
            except BadEncoding as exc:
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
                    parsed = parse_json(body, path)
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
                    delay = backoff(policy, slowed)
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
                    delay = backoff(policy, failures)
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
            body = BoundedBody(
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
        message = error_message(body, self._scrub)
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


def _slow_down_text(status: int | None) -> str:
    return "rate limited (HTTP 429)" if status == 429 else f"told to slow down (HTTP {status})"


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
