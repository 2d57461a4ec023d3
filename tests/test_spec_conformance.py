"""The simulator and the client against the OpenAI admin OpenAPI excerpt, over real HTTP.

Every request a demo pull makes is checked against the spec's paths and query parameters,
and one page of every list endpoint the client uses is validated against the operation's
200 response schema (JSON Schema 2020-12, as OpenAPI 3.1 defines it).
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from orgaudit.pull import pull
from orgaudit.settings import AdminKey
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.server import RequestRecord

from support import ADMIN_KEY, NOW, PULL, fast_settings

SPEC_PATH = Path(__file__).resolve().parent / "data" / "openai-admin-openapi-excerpt.yaml"
SPEC_URI = "urn:openai-admin-openapi-excerpt"

# The list endpoints a full pull of the demo org calls (test_pull_uses_exactly_these keeps
# this list honest).
LIST_ENDPOINTS = [
    "/organization/admin_api_keys",
    "/organization/audit_logs",
    "/organization/groups",
    "/organization/groups/{group_id}/roles",
    "/organization/groups/{group_id}/users",
    "/organization/invites",
    "/organization/projects",
    "/organization/projects/{project_id}/api_keys",
    "/organization/projects/{project_id}/groups",
    "/organization/projects/{project_id}/service_accounts",
    "/organization/projects/{project_id}/users",
    "/organization/roles",
    "/organization/users",
    "/organization/users/{user_id}/roles",
    "/projects/{project_id}/groups/{group_id}/roles",
    "/projects/{project_id}/roles",
    "/projects/{project_id}/users/{user_id}/roles",
]


@cache
def spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    return loaded


def resolve(node: Any) -> Any:
    """Follow a local ``$ref`` (``#/a/b``) within the spec, repeatedly."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"non-local $ref {ref}"
        node = spec()
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@cache
def _templates() -> list[tuple[str, re.Pattern[str]]]:
    return [
        (template, re.compile("^" + re.sub(r"\{[^}/]+\}", "[^/]+", template) + "$"))
        for template in spec()["paths"]
    ]


def match_template(path: str) -> str | None:
    """The spec path template ``path`` matches, preferring the one with fewest parameters."""
    found = [t for t, rx in _templates() if rx.match(path)]
    return min(found, key=lambda t: t.count("{")) if found else None


def query_params(template: str) -> dict[str, dict[str, Any]]:
    """The query parameters of a template's GET operation (path- and operation-level)."""
    item = spec()["paths"][template]
    params = [resolve(p) for p in [*item.get("parameters", []), *item["get"].get("parameters", [])]]
    return {p["name"]: p for p in params if p.get("in") == "query"}


def check_value(name: str, value: str, schema: dict[str, Any]) -> list[str]:
    """Problems with one query value against its (scalar) schema."""
    schema = resolve(schema)
    problems = []
    kind = schema.get("type")
    if kind == "integer":
        try:
            number = int(value)
        except ValueError:
            return [f"{name}={value!r} is not an integer"]
        if "minimum" in schema and number < schema["minimum"]:
            problems.append(f"{name}={number} < minimum {schema['minimum']}")
        if "maximum" in schema and number > schema["maximum"]:
            problems.append(f"{name}={number} > maximum {schema['maximum']}")
    elif kind == "boolean" and value not in ("true", "false"):
        problems.append(f"{name}={value!r} is not true/false")
    if "enum" in schema and value not in [str(v) for v in schema["enum"]]:
        problems.append(f"{name}={value!r} is not one of {schema['enum']}")
    return problems


def check_query(template: str, name: str, value: str) -> list[str]:
    """Problems with one query parameter of a GET on ``template``."""
    declared = query_params(template)
    if name in declared:
        schema = resolve(declared[name].get("schema", {}))
        if schema.get("type") == "array":
            return check_value(name, value, schema.get("items", {}))
        return check_value(name, value, schema)
    deep = re.fullmatch(r"([^\[\]]+)\[([^\[\]]+)\]", name)
    if deep and deep[1] in declared:
        param = declared[deep[1]]
        schema = resolve(param.get("schema", {}))
        is_deep = param.get("style") == "deepObject" or schema.get("type") == "object"
        properties = schema.get("properties", {})
        if is_deep and deep[2] in properties:
            return check_value(name, value, properties[deep[2]])
    return [f"query parameter {name!r} is not declared for GET {template}"]


def check_request(record: RequestRecord) -> list[str]:
    """Problems with one recorded request against the spec."""
    where = f"{record.method} {record.path}"
    if record.method != "GET":
        return [f"{where}: method is not GET"]
    template = match_template(record.path)
    if template is None:
        return [f"{where}: no spec path matches"]
    if "get" not in spec()["paths"][template]:
        return [f"{where}: {template} has no get operation"]
    return [
        f"{where}: {p}" for name, value in record.query for p in check_query(template, name, value)
    ]


# -- (a) every request a demo pull makes ------------------------------------------------------


def test_every_pull_request_conforms_to_the_spec(
    simulator: Simulator, admin_key: AdminKey, db_path: Path
) -> None:
    pull(admin_key, fast_settings(simulator), PULL, db_path)
    records = list(simulator.requests)
    assert len(records) >= len(LIST_ENDPOINTS)
    problems = [p for record in records for p in check_request(record)]
    assert problems == []


def test_checker_rejects_what_the_spec_does_not_allow() -> None:
    def bad(path: str, *query: tuple[str, str], method: str = "GET") -> list[str]:
        return check_request(RequestRecord(method, path, tuple(query), 200))

    assert bad("/organization/users", ("limit", "100")) == []
    assert (
        bad(
            "/organization/audit_logs",
            ("effective_at[gte]", "5"),
            ("event_types[]", "api_key.created"),
        )
        == []
    )
    assert bad("/organization/users", method="POST")
    assert bad("/organization/nowhere")
    assert bad("/organization/users", ("colour", "red"))
    assert bad("/organization/audit_logs", ("effective_at[soon]", "5"))
    assert bad("/organization/audit_logs", ("effective_at[gte]", "yesterday"))
    assert bad("/organization/audit_logs", ("event_types[]", "no.such.event"))
    assert bad("/organization/audit_logs", ("tenant_only", "yes"))
    assert bad("/organization/groups", ("limit", "1001"))
    assert bad("/organization/projects/proj_x/api_keys", ("owner_project_access", "some"))


# -- (b) one page of each list endpoint against its 200 response schema ----------------------


@pytest.fixture(scope="module")
def pulled(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Simulator, list[RequestRecord]]]:
    """The demo org served on loopback, after one full pull (the requests it made)."""
    db = tmp_path_factory.mktemp("spec-conformance") / "snapshots.db"
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY) as sim:
        pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db)
        yield sim, list(sim.requests)


def get_json(base_url: str, path: str, query: tuple[tuple[str, str], ...]) -> Any:
    """GET ``path`` from the simulator with the standard library, no proxies."""
    url = base_url.rstrip("/") + path + ("?" + urllib.parse.urlencode(query) if query else "")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    with opener.open(request, timeout=5) as response:
        assert response.status == 200
        return json.loads(response.read())


def response_validator(template: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    ref = spec()["paths"][template]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec(), DRAFT202012))
    schema = {"$ref": SPEC_URI + ref["$ref"]} if "$ref" in ref else ref
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_pull_uses_exactly_these_list_endpoints(
    pulled: tuple[Simulator, list[RequestRecord]],
) -> None:
    _, records = pulled
    assert sorted({match_template(r.path) for r in records}) == sorted(LIST_ENDPOINTS)


@pytest.mark.parametrize("template", LIST_ENDPOINTS)
def test_list_page_matches_response_schema(
    template: str, pulled: tuple[Simulator, list[RequestRecord]]
) -> None:
    sim, records = pulled
    record = next(
        r
        for r in records
        if r.status == 200
        and match_template(r.path) == template
        and all(name != "after" for name, _ in r.query)
    )
    body = get_json(sim.base_url, record.path, record.query)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in response_validator(template).iter_errors(body)
    ]
    assert errors == []


def test_response_validator_rejects_a_malformed_page() -> None:
    validator = response_validator("/organization/users")
    assert not validator.is_valid({"object": "list", "data": [{"id": 1}], "has_more": "no"})
