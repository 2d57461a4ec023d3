"""The simulator's HTTP server: the Admin API's list endpoints on loopback.

It serves what the client reads with the documented shapes and both cursor styles,
caps page sizes as the spec does, applies the ``owner_project_access`` rule (left out,
keys whose owner lost access are hidden), answers 401 to a wrong key and 405 to any
method but GET, and injects latency, a cap on requests in flight (429 beyond it) and
faults. Two quirks of the real API can be switched on: the admin-key list that also
returns project keys (:attr:`SimOrg.admin_list_includes_project_keys`) and error bodies
whose ``error`` is a bare string (``Simulator(error_style="string")``). The usage and
costs endpoints (their pages of daily buckets) are answered by
:mod:`orgaudit.simulator.usage`. The standard library's threading server is enough: every
request is small.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socket import SHUT_RDWR, socket
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, unquote, urlsplit

from orgaudit.simulator import usage
from orgaudit.simulator.org import JsonObject, SimOrg

API_PREFIX = "/v1"

# How an error answer spells its body. "object" is the spec's ErrorResponse,
# {"error": {"message", "type", "param", "code"}}; "string" is {"error": "<message>"},
# which a real 401 "Missing scopes" answer has been seen to carry:
# https://community.openai.com/t/admin-keys-not-working-missing-scopes-despite-all-permissions/1345041
ErrorStyle = Literal["object", "string"]
ERROR_STYLES: tuple[ErrorStyle, ...] = get_args(ErrorStyle)
# The statuses whose bodies take the "string" style: those of a denied key.
_STYLED_STATUSES = (401, 403)


def missing_scopes_message(scopes: Sequence[str]) -> str:
    """The API's text for a key that lacks ``scopes``, as quoted in community.openai.com
    thread 1368874 ("Admin API Key doesn't work unless explicit permissions are given")."""
    return (
        "You have insufficient permissions for this operation. "
        f"Missing scopes: {', '.join(scopes)}. Check that you have the correct role in your "
        "organization, and if you're using a restricted API key, that it has the necessary "
        "scopes."
    )


@dataclass
class Fault:
    """A misbehaviour injected into matching requests.

    ``kind`` is one of ``status`` (answer ``status`` with ``headers`` and an error body
    saying ``message``), ``stall`` (wait ``seconds`` before answering), ``drop`` (close
    the connection mid-body), ``malformed`` (a 200 that is not JSON), ``bad_shape``
    (a 200 that is JSON but not a list page), ``repeat_cursor`` (a page whose cursor never
    advances), ``ignore_limit`` (one page with every item, whatever the limit asked),
    ``echo_key`` (a 401 whose message repeats the presented key, as a hostile
    or careless server might), ``rewind_cursor`` (a page whose cursor points back to its
    own first item, so the next page repeats all but one of its items), ``body`` (answer
    ``status`` with ``body`` as it is, for tests that feed the client arbitrary bytes).
    It hits requests whose path (after ``/v1``) matches ``path``, skipping the first
    ``after`` of them, ``times`` times (-1: for ever); with ``chance`` below 1, each
    matching request is hit only with that probability, drawn from a generator seeded
    with ``seed`` (a random storm, the same every run). The error bodies of ``status``
    and ``echo_key`` take the simulator's ``error_style``. On the usage and costs routes,
    whose pages carry ``next_page`` instead, ``repeat_cursor``, ``rewind_cursor`` and
    ``ignore_limit`` act on buckets and ``next_page`` (see :func:`_usage_answer`).
    """

    kind: str
    path: str = ".*"
    times: int = 1
    after: int = 0
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "The server had an error while processing your request."
    seconds: float = 0.0
    body: bytes = b""
    chance: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        kinds = {
            "status",
            "stall",
            "drop",
            "malformed",
            "bad_shape",
            "repeat_cursor",
            "echo_key",
            "ignore_limit",
            "rewind_cursor",
            "body",
        }
        if self.kind not in kinds:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        self._pattern = re.compile(self.path)
        self._seen = 0
        self._random = random.Random(self.seed)

    def claim(self, path: str) -> bool:
        """Whether this fault hits this request (counting it if so). Caller holds the lock."""
        if self.times == 0 or not self._pattern.search(path):
            return False
        self._seen += 1
        if self._seen <= self.after:
            return False
        if self.chance < 1 and self._random.random() >= self.chance:
            return False
        if self.times > 0:
            self.times -= 1
        return True

    @classmethod
    def missing_scopes(
        cls,
        path: str = ".*",
        scopes: Sequence[str] = ("api.management.read",),
        *,
        status: int = 403,
        times: int = -1,
    ) -> Fault:
        """A ``status`` fault that answers as the API does to a key without ``scopes``.

        Thread 1345041 (above) reports it as a 401; 403, HTTP's status for a known
        caller without the right, is the default here and either can be asked.
        """
        return cls(
            "status", path, times=times, status=status, message=missing_scopes_message(scopes)
        )


@dataclass(frozen=True)
class RequestRecord:
    """One request as the simulator saw it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    style: str  # "A" (last_id) or "B" (next)
    max_limit: int
    default_limit: int
    items: Callable[[SimOrg, dict[str, str], dict[str, list[str]]], list[JsonObject]]


class _ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _project(org: SimOrg, pid: str) -> JsonObject:
    position = org.positions("projects", org.projects).get(pid)
    if position is None:
        raise _ApiError(404, f"No such project: {pid}", "not_found")
    return org.projects[position]


def _active_project(org: SimOrg, pid: str) -> JsonObject:
    project = _project(org, pid)
    if project.get("status") == "archived":
        # The spec documents 400 for these lists on archived projects.
        raise _ApiError(400, f"Project {pid} is archived.", "project_archived")
    return project


def _known(org: SimOrg, items: list[JsonObject], wanted: str, what: str) -> None:
    if wanted not in org.positions(what, items):
        raise _ApiError(404, f"No such {what}: {wanted}", "not_found")


def _assigned(org: SimOrg, role_ids: list[str], project_id: str | None) -> list[JsonObject]:
    details = []
    for role_id in role_ids:
        role = org.role(role_id, project_id)
        if role is None:
            continue
        detail = {key: value for key, value in role.items() if key != "object"}
        detail.update(
            created_at=1711471533,
            updated_at=1711471533,
            created_by="user_system",
            created_by_user_obj=None,
            metadata={},
            assignment_sources=None,
        )
        details.append(detail)
    return details


Query = dict[str, list[str]]
Args = dict[str, str]


def _users(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    return org.users


def _invites(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    return org.invites


def _admin_keys(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    return org.admin_key_list()


def _org_roles(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    return org.org_roles


def _groups(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    return org.groups


def _projects(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    if query.get("include_archived", ["false"])[-1] == "true":
        return org.projects
    return [p for p in org.projects if p.get("status") != "archived"]


def _group_users(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    _known(org, org.groups, args["g"], "group")
    return org.group_users.get(args["g"], [])


def _group_roles(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    _known(org, org.groups, args["g"], "group")
    return _assigned(org, org.group_org_roles.get(args["g"], []), None)


def _user_roles(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    _known(org, org.users, args["u"], "user")
    return _assigned(org, org.user_org_roles.get(args["u"], []), None)


def _project_users(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    _active_project(org, args["p"])
    return org.project_users.get(args["p"], [])


def _project_service_accounts(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    _active_project(org, args["p"])
    return org.project_service_accounts.get(args["p"], [])


def _project_keys(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    _project(org, args["p"])
    keys = org.project_api_keys.get(args["p"], [])
    access = query.get("owner_project_access", [None])[-1]
    if access is None:
        # Left out, the endpoint "applies its existing membership-based visibility rules,
        # which may exclude some enabled keys" (spec); here: keys whose owner lost access.
        access = "active"
    if access == "any":
        return keys
    if access not in ("active", "inactive"):
        raise _ApiError(400, f"Invalid owner_project_access: {access}", "invalid_value")
    return [k for k in keys if k["owner_project_access"] == access]


def _project_groups(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    _project(org, args["p"])
    return org.project_groups.get(args["p"], [])


def _project_roles(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    _project(org, args["p"])
    return org.project_roles.get(args["p"], [])


def _project_user_roles(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    _project(org, args["p"])
    return _assigned(org, org.project_user_roles.get((args["p"], args["u"]), []), args["p"])


def _project_group_roles(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    _project(org, args["p"])
    return _assigned(org, org.project_group_roles.get((args["p"], args["g"]), []), args["p"])


# The audit-log list's effective_at bounds (the spec's `effective_at` object parameter,
# sent as effective_at[gt]=... and so on) and how each compares an event's time.
_EFFECTIVE_AT_BOUNDS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda at, bound: at > bound,
    "gte": lambda at, bound: at >= bound,
    "lt": lambda at, bound: at < bound,
    "lte": lambda at, bound: at <= bound,
}


def _audit_logs(org: SimOrg, args: Args, query: Query) -> list[JsonObject]:
    types = tuple(query.get("event_types[]", ()))
    bounds: list[tuple[str, int]] = []
    for name in _EFFECTIVE_AT_BOUNDS:
        values = query.get(f"effective_at[{name}]")
        if values:
            if not re.fullmatch(r"-?[0-9]+", values[-1]):
                raise _ApiError(
                    400, f"Invalid effective_at[{name}]: {values[-1]!r}", "invalid_value"
                )
            bounds.append((name, int(values[-1])))

    def select() -> list[JsonObject]:
        events = org.audit_logs
        if types:
            events = [e for e in events if e["type"] in types]

        # An event whose time is not a number (a hostile org's) passes every bound and
        # sorts last: served as it is, for the client to cope with.
        def when(event: JsonObject) -> int:
            at = event["effective_at"]
            return at if isinstance(at, int) and not isinstance(at, bool) else -(2**63)

        for name, bound in bounds:
            within = _EFFECTIVE_AT_BOUNDS[name]
            events = [e for e in events if when(e) == -(2**63) or within(when(e), bound)]
        # Newest first; sorted() is stable, so events of one time keep the log's order.
        return sorted(events, key=when, reverse=True)

    selected: list[JsonObject] = org.memo(("audit", types, tuple(bounds)), org.audit_logs, select)
    return selected


ItemsFunction = Callable[[SimOrg, Args, Query], list[JsonObject]]


def _route(path: str, style: str, max_limit: int, default: int, items: ItemsFunction) -> _Route:
    return _Route(re.compile(f"^{path}$"), style, max_limit, default, items)


_ID = r"[^/]+"
# Page-size maxima are the spec's (the `limit` parameters in the OpenAPI document): 100 for
# the last_id lists and project groups, 1000 for the other RBAC lists.
ROUTES: tuple[_Route, ...] = (
    _route("/organization/users", "A", 100, 20, _users),
    _route("/organization/invites", "A", 100, 20, _invites),
    _route("/organization/projects", "A", 100, 20, _projects),
    _route("/organization/admin_api_keys", "A", 100, 20, _admin_keys),
    _route("/organization/audit_logs", "A", 100, 20, _audit_logs),
    _route("/organization/roles", "B", 1000, 1000, _org_roles),
    _route("/organization/groups", "B", 1000, 100, _groups),
    _route(f"/organization/groups/(?P<g>{_ID})/users", "B", 1000, 100, _group_users),
    _route(f"/organization/groups/(?P<g>{_ID})/roles", "B", 1000, 100, _group_roles),
    _route(f"/organization/users/(?P<u>{_ID})/roles", "B", 1000, 100, _user_roles),
    _route(f"/organization/projects/(?P<p>{_ID})/users", "A", 100, 20, _project_users),
    _route(
        f"/organization/projects/(?P<p>{_ID})/service_accounts",
        "A",
        100,
        20,
        _project_service_accounts,
    ),
    _route(f"/organization/projects/(?P<p>{_ID})/api_keys", "A", 100, 20, _project_keys),
    _route(f"/organization/projects/(?P<p>{_ID})/groups", "B", 100, 20, _project_groups),
    _route(f"/projects/(?P<p>{_ID})/roles", "B", 1000, 1000, _project_roles),
    _route(f"/projects/(?P<p>{_ID})/users/(?P<u>{_ID})/roles", "B", 1000, 100, _project_user_roles),
    _route(
        f"/projects/(?P<p>{_ID})/groups/(?P<g>{_ID})/roles", "B", 1000, 100, _project_group_roles
    ),
)


def _page(
    route: _Route,
    items: list[JsonObject],
    query: dict[str, list[str]],
    everything: bool = False,
) -> JsonObject:
    raw_limit = query.get("limit", [str(route.default_limit)])[-1]
    try:
        limit = int(raw_limit)
    except ValueError:
        raise _ApiError(400, f"Invalid limit: {raw_limit!r}", "invalid_value") from None
    lowest = 1 if route.style == "A" else 0
    if not lowest <= limit <= route.max_limit:
        raise _ApiError(
            400, f"limit must be between {lowest} and {route.max_limit}", "invalid_value"
        )
    limit = limit or route.default_limit
    after = query.get("after", [None])[-1]
    start = 0
    if after is not None:
        if route.style == "B":
            if not after.startswith("cursor_") or not after[7:].isdigit():
                raise _ApiError(400, f"Invalid cursor: {after!r}", "invalid_value")
            start = int(after[7:])
        else:
            position = next(
                (
                    i
                    for i, item in enumerate(items)
                    if item.get("id", item.get("group_id")) == after
                ),
                None,
            )
            if position is None:
                raise _ApiError(400, f"Invalid after: {after!r}", "invalid_value")
            start = position + 1
    if everything:  # a server that ignores the limit: one page with every item
        limit = len(items)
    data = items[start : start + limit]
    has_more = start + limit < len(items)
    if route.style == "B":
        return {
            "object": "list",
            "data": data,
            "has_more": has_more,
            "next": f"cursor_{start + limit}" if has_more else None,
        }
    first = data[0].get("id") if data else None
    last = data[-1].get("id") if data else None
    return {
        "object": "list",
        "data": data,
        "first_id": first,
        "last_id": last,
        "has_more": has_more,
    }


class Simulator:
    """The Admin API on loopback for one org. Use as a context manager, or start/stop.

    ``requests`` records every request received; ``max_in_flight_seen`` the peak of
    concurrent requests. ``org`` may be changed between pulls. ``error_style`` spells
    the bodies of 401 and 403 answers and of ``status`` faults: ``"object"`` (the spec's,
    the default) or ``"string"`` (``{"error": "<message>"}``, as real answers have been
    seen); other errors always take the spec's shape. It may be changed while serving.
    """

    def __init__(
        self,
        org: SimOrg,
        *,
        admin_key: str,
        latency: float = 0.0,
        max_in_flight: int | None = None,
        throttle_headers: dict[str, str] | None = None,
        faults: Iterable[Fault] = (),
        error_style: ErrorStyle = "object",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if error_style not in ERROR_STYLES:
            raise ValueError(f"unknown error style {error_style!r}")
        self.org = org
        self.error_style: ErrorStyle = error_style
        self.latency = latency
        self.max_in_flight = max_in_flight
        self.throttle_headers = throttle_headers or {"Retry-After": "1"}
        self.faults: list[Fault] = list(faults)
        self.requests: list[RequestRecord] = []
        self.max_in_flight_seen = 0
        self._admin_key = admin_key
        self._lock = threading.Lock()
        self._in_flight = 0
        self._sockets: set[socket] = set()
        self._server = _Server((host, port), _Handler)
        self._server.simulator = self
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The base URL to give the client (``http://127.0.0.1:PORT/v1``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{API_PREFIX}"

    def start(self) -> Simulator:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="orgaudit-simulator",
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and cut every open connection, as a killed server would."""
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_fault(self, fault: Fault) -> None:
        """Inject a fault into the requests from now on."""
        with self._lock:
            self.faults.append(fault)

    def count(self, path_pattern: str = ".*", status: int | None = None) -> int:
        """How many requests matched a path pattern (and a status, if given)."""
        pattern = re.compile(path_pattern)
        with self._lock:
            return sum(
                1
                for r in self.requests
                if pattern.search(r.path) and (status is None or r.status == status)
            )

    # -- used by the handler -----------------------------------------------------------------

    def _claim_fault(self, path: str) -> Fault | None:
        with self._lock:
            return next((fault for fault in self.faults if fault.claim(path)), None)

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _enter(self) -> bool:
        with self._lock:
            if self.max_in_flight is not None and self._in_flight >= self.max_in_flight:
                return False
            self._in_flight += 1
            self.max_in_flight_seen = max(self.max_in_flight_seen, self._in_flight)
            return True

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _error(
        self,
        status: int,
        message: str,
        code: str | None,
        headers: dict[str, str] | None = None,
        *,
        styled: bool = False,
    ) -> _Response:
        """An error answer: in ``error_style`` for a 401 or 403 (or if ``styled``),
        otherwise in the spec's shape."""
        style = self.error_style if styled or status in _STYLED_STATUSES else "object"
        return _json_response(status, _error_body(message, code, style), headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops the SYNs of a client that opens 16
    # connections at once, and each dropped SYN costs the client a 1 s retransmit.
    request_queue_size = 128
    simulator: Simulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections the client (or ``stop``) cut are normal here; stay quiet about them."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY each keep-alive
    # answer would wait ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.simulator._lock:
            self.server.simulator._sockets.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.simulator._lock:
                self.server.simulator._sockets.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        arrived = time.monotonic()
        sim = self.server.simulator
        parts = urlsplit(self.path)
        pairs = tuple(parse_qsl(parts.query, keep_blank_values=True))
        path = parts.path[len(API_PREFIX) :] if parts.path.startswith(API_PREFIX) else parts.path
        if not sim._enter():
            response = sim._error(
                429, "Too many requests in flight.", "rate_limit_exceeded", sim.throttle_headers
            )
        else:
            try:
                response = self._answer(sim, path, pairs)
                # The answer leaves `latency` after the request came in, however long it
                # took to build: the simulated API's own speed stays out of the figures.
                remaining = sim.latency - (time.monotonic() - arrived)
                if remaining > 0:
                    time.sleep(remaining)
            finally:
                # Counted out before the answer is written: a client that sends its next
                # request the moment it reads this one must not find it still in flight.
                sim._leave()
        self._record("GET", path, pairs, response.status)
        self._send(response)

    def _answer(self, sim: Simulator, path: str, pairs: tuple[tuple[str, str], ...]) -> _Response:
        auth = self.headers.get("Authorization", "")
        presented = auth.removeprefix("Bearer ").strip()
        if presented != sim._admin_key:
            masked = presented[:6] + "*" * 8 + presented[-4:] if len(presented) > 10 else "***"
            return sim._error(
                401,
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_api_key",
            )
        fault = sim._claim_fault(path)
        if fault is not None:
            faulty = _fault_response(sim, fault, presented)
            if faulty is not None:
                return faulty
        query: dict[str, list[str]] = {}
        for name, value in pairs:
            query.setdefault(name, []).append(value)
        if fault is not None and fault.kind == "repeat_cursor":
            # Every page is the first, with a cursor that never moves.
            query.pop("after", None)
            query.pop("page", None)
        endpoint = usage.USAGE_ENDPOINTS.get(path)
        if endpoint is not None:
            return _usage_answer(sim, endpoint, query, fault)
        for route in ROUTES:
            match = route.pattern.match(path)
            if match is None:
                continue
            try:
                everything = fault is not None and fault.kind == "ignore_limit"
                # Path arguments arrive escaped (an id may hold "/" or "?").
                args = {name: unquote(value) for name, value in match.groupdict().items()}
                items = route.items(sim.org, args, query)
                page = _page(route, items, query, everything)
            except _ApiError as exc:
                return sim._error(exc.status, exc.message, exc.code)
            if fault is not None and fault.kind == "repeat_cursor":
                page["has_more"] = True
                page["next" if route.style == "B" else "last_id"] = "cursor_stuck"
            if fault is not None and fault.kind == "rewind_cursor" and page["data"]:
                if route.style == "B":
                    after = query.get("after", ["cursor_0"])[-1]
                    page["next"] = f"cursor_{int(after.removeprefix('cursor_')) + 1}"
                else:
                    first = page["data"][0]
                    page["last_id"] = first.get("id", first.get("group_id"))
            return _json_response(200, page)
        return sim._error(404, f"Invalid URL (GET {API_PREFIX}{path})", None)

    def _send(self, response: _Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            length = len(response.body) + (4096 if response.truncated else 0)
            self.send_header("Content-Length", str(length))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
            if response.truncated:  # a connection dropped mid-body
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(SHUT_RDWR)
        except OSError:  # the client gave up (a stall past its timeout)
            self.close_connection = True

    def _refuse(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.removeprefix(API_PREFIX)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._record(self.command, path, tuple(parse_qsl(parts.query)), 405)
        self._send(
            self.server.simulator._error(
                405,
                f"{self.command} is not served: the simulator is read-only",
                "method_not_allowed",
                {"Allow": "GET"},
            )
        )

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _refuse

    def _record(
        self, method: str, path: str, pairs: tuple[tuple[str, str], ...], status: int
    ) -> None:
        self.server.simulator._record(RequestRecord(method, path, pairs, status))


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    truncated: bool = False


def _json_response(
    status: int, body: JsonObject, headers: dict[str, str] | None = None
) -> _Response:
    return _Response(status, json.dumps(body).encode(), dict(headers or {}))


def _usage_answer(
    sim: Simulator, endpoint: usage.UsageEndpoint, query: Query, fault: Fault | None
) -> _Response:
    """A usage or costs page (a ``UsageResponse``), with the cursor faults' analogues.

    ``repeat_cursor``: the first page (its ``page`` was dropped) with ``has_more`` and a
    ``next_page`` pointing at that same first page, so the cursor never advances.
    ``rewind_cursor``: ``next_page`` points one bucket after the page's first, so the next
    page repeats all but one of its buckets. ``ignore_limit``: every bucket in one page.
    """
    try:
        request = usage.parse_usage_query(endpoint, query, usage.org_present(sim.org))
    except usage.UsageQueryError as exc:
        return sim._error(400, exc.message, "invalid_value")
    kind = fault.kind if fault is not None else None
    page = usage.usage_page(sim.org, endpoint, request, every_bucket=kind == "ignore_limit")
    if kind == "repeat_cursor":
        page["has_more"] = True
        page["next_page"] = usage.page_cursor(usage.utc_day_start(request.start_time))
    if kind == "rewind_cursor" and page["has_more"] and page["data"]:
        page["next_page"] = usage.page_cursor(page["data"][0]["start_time"] + usage.SECONDS_PER_DAY)
    return _json_response(200, page)


def _fault_response(sim: Simulator, fault: Fault, presented_key: str) -> _Response | None:
    """The answer a fault gives instead of the real one, or None to answer normally."""
    if fault.kind == "status":
        return sim._error(fault.status, fault.message, None, fault.headers, styled=True)
    if fault.kind == "echo_key":
        return sim._error(401, f"Key {presented_key} was revoked.", None)
    if fault.kind == "stall":
        time.sleep(fault.seconds)
        return None
    if fault.kind == "malformed":
        return _Response(200, b'{"object": "list", "data": [')
    if fault.kind == "bad_shape":
        return _json_response(200, {"object": "list", "data": "not a list", "has_more": False})
    if fault.kind == "body":
        return _Response(fault.status, fault.body)
    if fault.kind == "drop":
        return _Response(200, b'{"object": "list", "da', truncated=True)
    return None  # repeat_cursor: answered by the route, with a stuck cursor


def _error_body(message: str, code: str | None, style: ErrorStyle = "object") -> JsonObject:
    if style == "string":
        return {"error": message}
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }
