"""The simulator and the client against the OpenAI admin OpenAPI excerpt, over real HTTP.

Every request a demo pull makes is checked against the spec's paths and query parameters,
and one page of every list endpoint the client uses is validated against the operation's
200 response schema (JSON Schema 2020-12, as OpenAPI 3.1 defines it). The excerpt itself
is checked too: it names its source, holds every path the pull reads, and every ``$ref``
in it resolves.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from orgaudit.collect.sources import ALL_SOURCES
from orgaudit.settings import AdminKey
from orgaudit.simulator import Fault, Simulator
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.org import project_key_as_admin_key
from orgaudit.simulator.server import RequestRecord

from support import ADMIN_KEY, NOW, PULL, fast_settings, pull

SPEC_PATH = Path(__file__).resolve().parent / "data" / "openai-admin-openapi-excerpt.yaml"
SPEC_URI = "urn:openai-admin-openapi-excerpt"

# The list endpoints a full pull of the demo org calls (test_pull_uses_exactly_these keeps
# this list honest).
LIST_ENDPOINTS = [
    "/organization/admin_api_keys",
    "/organization/audit_logs",
    "/organization/costs",
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
    "/organization/usage/audio_speeches",
    "/organization/usage/audio_transcriptions",
    "/organization/usage/code_interpreter_sessions",
    "/organization/usage/completions",
    "/organization/usage/embeddings",
    "/organization/usage/file_search_calls",
    "/organization/usage/images",
    "/organization/usage/moderations",
    "/organization/usage/vector_stores",
    "/organization/usage/web_search_calls",
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
    ref = spec()["paths"][template]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    return validator(ref)


def validator(schema: dict[str, Any]) -> Any:
    """A JSON Schema 2020-12 validator for ``schema``, whose ``$ref`` point into the spec."""
    jsonschema = pytest.importorskip("jsonschema")
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec(), DRAFT202012))
    if "$ref" in schema:
        schema = {"$ref": SPEC_URI + schema["$ref"]}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def component(name: str) -> Any:
    """A validator for one of the spec's component schemas."""
    return validator({"$ref": f"#/components/schemas/{name}"})


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


# -- (c) the excerpt itself ---------------------------------------------------------------------


def test_excerpt_names_its_source_repository_path_commit_and_date() -> None:
    header = []
    with SPEC_PATH.open(encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            header.append(line)
    text = "".join(header)
    assert "https://github.com/openai/openai-openapi" in text
    assert re.search(r"^# Path: +openapi\.yaml", text, re.MULTILINE)
    commit = re.search(r"^# Commit: +([0-9a-f]{40})$", text, re.MULTILINE)
    assert commit is not None
    assert re.search(r"^# Date: +\d{4}-\d{2}-\d{2}T", text, re.MULTILINE)
    assert commit[1] in spec()["x-excerpt-note"]


def test_excerpt_holds_a_get_for_every_path_the_pull_reads() -> None:
    paths = spec()["paths"]
    missing = [s.endpoint.path for s in ALL_SOURCES if "get" not in paths.get(s.endpoint.path, {})]
    assert missing == []


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_ref_in_the_excerpt_resolves() -> None:
    unresolved = []
    for ref in sorted(set(_refs(spec()))):
        try:
            resolve({"$ref": ref})
        except KeyError:
            unresolved.append(ref)
    assert unresolved == []


def test_excerpt_documents_service_account_key_creation_with_scopes() -> None:
    operation = spec()["paths"][
        "/organization/projects/{project_id}/service_accounts/{service_account_id}/api_keys"
    ]["post"]
    body = resolve(operation["requestBody"]["content"]["application/json"]["schema"])
    assert {"name", "scopes"} <= set(body["properties"])


def test_the_excerpts_known_gaps_are_still_gaps() -> None:
    """What the API reference documents but the excerpt's commit lacks (see its header).

    When a refreshed excerpt fails here, the spec has caught up: update the header's list
    of gaps and this test.
    """
    key = spec()["components"]["schemas"]["ProjectApiKey"]
    assert "expires_at" not in key["properties"]
    assert key.get("additionalProperties", True) is not False  # so `expires_at` validates
    update = spec()["paths"]["/organization/projects/{project_id}/api_keys/{api_key_id}"]
    assert "post" not in update
    create = spec()["components"]["schemas"]["CreateProjectServiceAccountApiKeyBody"]
    assert "expires_in_seconds" not in create["properties"]


# -- (d) the simulator's quirks against the spec -------------------------------------------------


def test_project_keys_shown_as_admin_keys_match_the_admin_key_schema() -> None:
    org = demo_org(NOW)
    check = component("AdminApiKey")
    shown = [project_key_as_admin_key(k) for keys in org.project_api_keys.values() for k in keys]
    assert shown
    assert [e.message for item in shown for e in check.iter_errors(item)] == []


def _error_json(sim: Simulator, path: str, key: str = ADMIN_KEY) -> Any:
    """The JSON body of a GET that must fail."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        sim.base_url + path, headers={"Authorization": f"Bearer {key}"}
    )
    try:
        opener.open(request, timeout=5).close()
    except urllib.error.HTTPError as error:
        with error:
            return json.loads(error.read())
    raise AssertionError(f"GET {path} succeeded")


def test_spec_shaped_error_bodies_match_error_response() -> None:
    check = component("ErrorResponse")
    fault = Fault.missing_scopes("^/organization/projects$")
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY, faults=[fault]) as sim:
        bodies = [
            _error_json(sim, "/organization/projects"),  # 403, missing scopes
            _error_json(sim, "/organization/nowhere"),  # 404
            _error_json(sim, "/organization/users", key="sk-wrong-000000000000"),  # 401
        ]
        sim.error_style = "string"
        bare = _error_json(sim, "/organization/projects")
    assert [e.message for body in bodies for e in check.iter_errors(body)] == []
    # The bare-string shape real answers have shown is outside the spec, on purpose.
    assert not check.is_valid(bare)
