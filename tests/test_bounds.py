"""Bounds a hostile or broken server cannot break, and networks as companies run them.

Real HTTP on loopback: the project's simulator, a small hostile server that answers
whatever bytes a test gives it, a forward proxy, and a TLS server with a self-signed
certificate (``tests/data/loopback-tls.pem``, made for these tests and for 127.0.0.1
only; its key is no secret).
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from orgaudit import store
from orgaudit.collect import sources
from orgaudit.collect.answers import JsonObject
from orgaudit.collect.client import AdminClient
from orgaudit.collect.pull import reading_memory_ceiling
from orgaudit.errors import ApiError, MalformedResponseError
from orgaudit.settings import AdminKey, ClientSettings, RetryPolicy
from orgaudit.simulator import Fault, OrgBuilder, Simulator

from support import ADMIN_KEY, NOW, PULL, fast_settings, pull

DATA = Path(__file__).resolve().parent / "data"
CERT, CERT_KEY = DATA / "loopback-tls.pem", DATA / "loopback-tls.key"
USERS = sources.USERS.endpoint
EMPTY_PAGE = b'{"object": "list", "data": [], "has_more": false, "last_id": null}'
# The Usage and Costs APIs' page (openai/openai-openapi openapi.json, UsageResponse).
EMPTY_USAGE_PAGE = b'{"object": "page", "data": [], "has_more": false, "next_page": null}'

# An answer: status, headers, and the body as chunks with a pause before each.
Answer = tuple[int, dict[str, str], list[tuple[float, bytes]]]


@contextmanager
def hostile(answer: Callable[[str], Answer], tls: bool = False) -> Iterator[str]:
    """A loopback server answering every GET with ``answer(path)``; yields its base URL."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            status, headers, chunks = answer(self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(sum(len(c) for _, c in chunks)))
            self.end_headers()
            try:
                for pause, chunk in chunks:
                    time.sleep(pause)
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as it should

    with serving(Handler, tls) as port:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}/v1"


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (as a refused answer makes it do) is no error here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], tls: bool = False) -> Iterator[int]:
    """Serve ``handler`` on a free loopback port (TLS with the test certificate)."""
    server = _QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(CERT, CERT_KEY)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _settings(base_url: str, **overrides: Any) -> ClientSettings:
    retry = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)
    values: dict[str, Any] = {"base_url": base_url, "timeout": 2.0, "retry": retry}
    values.update(overrides)
    return ClientSettings(**values)


def _list_users(settings: ClientSettings) -> list[JsonObject]:
    async def run() -> list[JsonObject]:
        async with AdminClient(AdminKey(ADMIN_KEY), settings) as client:
            return await client.list_all(USERS, USERS.path)

    return asyncio.run(run())


def _page(body: bytes, encoding: str | None = None) -> Callable[[str], Answer]:
    headers = {"Content-Type": "application/json"}
    if encoding:
        headers["Content-Encoding"] = encoding
    return lambda _path: (200, headers, [(0.0, body)])


# -- decoding and size -------------------------------------------------------------------


def _gzip_of_zeros(size: int) -> bytes:
    """A gzip body that expands to ``size`` zero bytes (a small, hostile download)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, packer.flush()])


def test_a_single_gzip_body_is_decoded() -> None:
    with hostile(_page(gzip.compress(EMPTY_PAGE), "gzip")) as url:
        assert _list_users(_settings(url)) == []


def test_stacked_codings_are_refused_before_anything_is_decoded() -> None:
    bomb = gzip.compress(gzip.compress(bytes(1 << 20)))
    with hostile(_page(bomb, "gzip, gzip")) as url, pytest.raises(MalformedResponseError) as info:
        _list_users(_settings(url))
    assert "Content-Encoding 'gzip, gzip' is not accepted" in str(info.value)


def test_a_gzip_bomb_is_refused_at_the_size_bound() -> None:
    bomb = _gzip_of_zeros(256 << 20)  # 256 MiB once decoded, about 250 KB on the wire
    assert len(bomb) < 1 << 20
    with hostile(_page(bomb, "gzip")) as url, pytest.raises(MalformedResponseError) as info:
        _list_users(_settings(url, max_body_bytes=8 << 20))
    assert "larger than 8388608 bytes (--max-body-mb); refused" in str(info.value)


@pytest.mark.parametrize(
    ("body", "encoding", "problem"),
    [
        (gzip.compress(EMPTY_PAGE)[:-12], "gzip", "gzip body is cut short"),
        (b"not gzip at all", "gzip", "gzip body is corrupt"),
        (gzip.compress(EMPTY_PAGE) * 2, "gzip", "holds data after its gzip body"),
        (EMPTY_PAGE, "br", "Content-Encoding 'br' is not accepted"),
    ],
    ids=["cut-short", "corrupt", "two-members", "brotli"],
)
def test_a_body_coded_wrongly_is_one_line_and_not_retried(
    body: bytes, encoding: str, problem: str
) -> None:
    with hostile(_page(body, encoding)) as url, pytest.raises(MalformedResponseError) as info:
        _list_users(_settings(url))
    assert problem in str(info.value) and "\n" not in str(info.value)


# -- time ---------------------------------------------------------------------------------


def test_a_server_trickling_a_byte_a_second_is_abandoned_at_the_timeout() -> None:
    # Each read gets a byte within a second, so a per-read timeout of 2 s never fires;
    # the bound is on the whole response.
    trickle = [(1.0, b" ")] * 30 + [(0.0, EMPTY_PAGE)]

    def answer(_path: str) -> Answer:
        return 200, {"Content-Type": "application/json"}, trickle

    with hostile(answer) as url, pytest.raises(ApiError) as info:
        _list_users(_settings(url, retry=RetryPolicy(max_attempts=1)))
    assert "timed out after 2 s" in str(info.value)


# -- hostile JSON --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"object": "list", "data": [' + b"[" * 5000 + b"]" * 5000 + b'], "has_more": false}',
        b'{"object": "list", "data": [{"id": "u", "n": ' + b"9" * 5000 + b'}], "has_more": false}',
        b'{"object": "list", "data": [{"id": "u", "x": '
        + b'{"a": ' * 100
        + b"1"
        + b"}" * 100
        + b'}], "has_more": false}',
    ],
    ids=["nested-5000", "5000-digit-number", "nested-100"],
)
def test_hostile_json_is_one_line_exit_3_not_an_internal_error(body: bytes, tmp_path: Path) -> None:
    builder = OrgBuilder("org_json", NOW)
    builder.user("Only", "only@example.com", "owner", user_id="user_only")
    fault = Fault("body", path="^/organization/users$", status=200, body=body, times=-1)
    with Simulator(builder.org, admin_key=ADMIN_KEY, faults=[fault]) as sim:
        with pytest.raises(MalformedResponseError) as info:
            pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, tmp_path / "db")
        # One answer was enough: a hostile body is not asked for again.
        assert sim.count("^/organization/users$") == 1
    assert "refused" in str(info.value) and "\n" not in str(info.value)


# -- ids in paths ------------------------------------------------------------------------


def test_ids_holding_slashes_and_question_marks_stay_one_path_segment(tmp_path: Path) -> None:
    builder = OrgBuilder("org_ids", NOW)
    user = builder.user("Odd", "odd@example.com", user_id="user_odd")
    project = builder.project("Odd", project_id="proj_a/b?c=d#e")
    builder.member(project, user, "member")
    with Simulator(builder.org, admin_key=ADMIN_KEY) as sim:
        pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, tmp_path / "db")
        asked = [r.path for r in sim.requests if "proj_a" in r.path]
    assert asked and all("proj_a%2Fb%3Fc%3Dd%23e" in path for path in asked)
    with store.connect(tmp_path / "db") as conn:
        members = store.read_table(conn, "project_users", 1)
    assert members["project_id"].tolist() == ["proj_a/b?c=d#e"]


# -- proxies and certificates -------------------------------------------------------------


@contextmanager
def forward_proxy() -> Iterator[tuple[str, list[str]]]:
    """A plain-HTTP forward proxy on loopback that relays GETs; yields its URL and the
    request lines it relayed."""
    relayed: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            relayed.append(f"{self.command} {self.path}")
            target = urlsplit(self.path)  # absolute-form: the client knows it is a proxy
            upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
            upstream.request(
                "GET", target.path + (f"?{target.query}" if target.query else ""), headers=headers
            )
            reply = upstream.getresponse()
            body = reply.read()
            self.send_response(reply.status)
            for name, value in reply.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            upstream.close()

    with serving(Handler) as port:
        yield f"http://127.0.0.1:{port}", relayed


def _small_org() -> Any:
    builder = OrgBuilder("org_proxy", NOW)
    owner = builder.user("Owner", "owner@example.com", "owner", user_id="user_owner")
    project = builder.project("P", project_id="proj_p")
    builder.member(project, owner, "owner")
    return builder.org


def test_a_pull_goes_through_the_proxy_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Simulator(_small_org(), admin_key=ADMIN_KEY) as sim, forward_proxy() as (proxy, relayed):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        result = pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, tmp_path / "db")
    assert result.collected.requests == len(relayed) > 0
    assert all(line.startswith(f"GET {sim.base_url}/") for line in relayed)


def test_no_proxy_keeps_a_host_off_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Simulator(_small_org(), admin_key=ADMIN_KEY) as sim, forward_proxy() as (proxy, relayed):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, tmp_path / "db")
    assert relayed == []


def test_a_refused_certificate_is_said_and_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    calls = 0

    def answer(_path: str) -> Answer:
        nonlocal calls
        calls += 1
        return 200, {"Content-Type": "application/json"}, [(0.0, EMPTY_PAGE)]

    with hostile(answer, tls=True) as url, pytest.raises(ApiError) as info:
        _list_users(_settings(url, retry=RetryPolicy(max_attempts=4, base_delay=0.01)))
    message = str(info.value)
    assert "TLS certificate was refused (self-signed certificate)" in message
    assert "SSL_CERT_FILE" in message and "\n" not in message
    assert calls == 0


def test_ssl_cert_file_names_the_ca_to_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(CERT))
    with hostile(_page(EMPTY_PAGE), tls=True) as url:
        assert _list_users(_settings(url)) == []


_CHILD = """
import asyncio, resource, sys
from orgaudit.collect import sources
from orgaudit.collect.client import AdminClient
from orgaudit.errors import MalformedResponseError
from orgaudit.settings import AdminKey, ClientSettings
endpoint = sources.USERS.endpoint
async def main():
    async with AdminClient(AdminKey(sys.argv[2]), ClientSettings(base_url=sys.argv[1])) as c:
        await c.list_all(endpoint, endpoint.path)
try:
    asyncio.run(main())
except MalformedResponseError as exc:
    print(exc)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


@pytest.mark.parametrize("encoding", ["gzip", "gzip, gzip"], ids=["gzip", "double-gzip"])
def test_a_gigabyte_bomb_is_refused_with_memory_far_below_its_size(encoding: str) -> None:
    # 1 GiB of zeros once decoded (once more decoded for the double coding): the client,
    # at its default bounds, in a process of its own so its peak memory is its own.
    bomb = _gzip_of_zeros(1 << 30)
    if encoding == "gzip, gzip":
        bomb = gzip.compress(bomb)
    with hostile(_page(bomb, encoding)) as url:
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, url, ADMIN_KEY],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    *said, peak_mb = child.stdout.strip().splitlines()
    assert said and "refused" in said[0], child.stdout + child.stderr
    assert int(peak_mb) < 600, f"peak {peak_mb} MB"


# -- the pull's memory -------------------------------------------------------------------

# `orgaudit pull` as a user runs it, reporting its own peak memory (VmHWM: a child's
# ru_maxrss could carry over the pytest process's peak) to the file in its last argument.
_PULL_WITH_PEAK = """
import atexit, runpy, sys
from pathlib import Path
report = Path(sys.argv.pop())
def peak():
    status = Path("/proc/self/status").read_text()
    line = next(l for l in status.splitlines() if l.startswith("VmHWM:"))
    report.write_text(str(int(line.split()[1]) // 1024))
atexit.register(peak)
sys.argv[0] = "orgaudit"
runpy.run_module("orgaudit", run_name="__main__")
"""
FAT_PAGE_USERS = 100
FAT_USER_BYTES = 40_000  # 100 of them: a 4 MB page, under the 8 MB bound the test sets


def _fat_users(pages: int) -> Callable[[str], Answer]:
    """A users list of ``pages`` pages of 100 users, each user carrying 40 KB more than
    a real one does; every other list is empty."""
    padding = "x" * FAT_USER_BYTES

    def answer(path: str) -> Answer:
        where = urlsplit(path).path
        if "/organization/usage/" in where or where.endswith("/organization/costs"):
            return _page(EMPTY_USAGE_PAGE)(path)
        if not where.endswith("/organization/users"):
            return _page(EMPTY_PAGE)(path)
        query = dict(part.split("=", 1) for part in urlsplit(path).query.split("&") if part)
        after = query.get("after")  # "user-<page>-<n>", the last id of the page before
        page = int(after.split("-")[1]) + 1 if after else 0
        users = [
            {"object": "organization.user", "id": f"user-{page}-{n}", "name": f"User {page}-{n}",
             "email": f"u{page}-{n}@example.com", "role": "reader", "added_at": 1, "pad": padding}
            for n in range(FAT_PAGE_USERS)
        ]  # fmt: skip
        body = {"object": "list", "data": users, "has_more": page + 1 < pages,
                "last_id": users[-1]["id"]}  # fmt: skip
        return _page(json.dumps(body).encode())(path)

    return answer


def _pull_peak_mb(pages: int, tmp_path: Path) -> int:
    key_file = tmp_path / "key"
    key_file.write_text(ADMIN_KEY)
    report, db = tmp_path / f"peak-{pages}", tmp_path / f"fat-{pages}.db"
    with hostile(_fat_users(pages)) as url:
        child = subprocess.run(
            [sys.executable, "-c", _PULL_WITH_PEAK, "pull", "--base-url", url,
             "--admin-key-file", str(key_file), "--db", str(db), "--max-body-mb", "8",
             "--concurrency", "4", str(report)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert child.returncode == 0, child.stdout + child.stderr
    with sqlite3.connect(db) as conn:  # everything read reached the snapshot, padding too
        rows = conn.execute("SELECT COUNT(*), SUM(LENGTH(raw)) FROM users").fetchone()
    assert rows[0] == pages * FAT_PAGE_USERS
    assert rows[1] > pages * FAT_PAGE_USERS * FAT_USER_BYTES
    return int(report.read_text())


def test_a_pulls_memory_stays_under_its_ceiling_however_much_the_pages_hold(
    tmp_path: Path,
) -> None:
    # 40 MB of users through the pull, then 160 MB: the peak stays under the
    # documented ceiling for these options, and does not grow with what was read.
    ceiling_mb = reading_memory_ceiling(
        ClientSettings(max_body_bytes=8 * 1024 * 1024, concurrency=4)
    ) // (1024 * 1024)
    small = _pull_peak_mb(10, tmp_path)
    large = _pull_peak_mb(40, tmp_path)
    assert large < ceiling_mb, f"peak {large} MB, ceiling {ceiling_mb} MB"
    print(f"peak {small} MB after 40 MB read, {large} MB after 160 MB; ceiling {ceiling_mb} MB")
    assert large - small < 60, f"peak {small} MB after 40 MB read, {large} MB after 160 MB"
