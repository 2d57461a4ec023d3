"""The json of access-review campaigns against its published schema
(docs/schemas/review.schema.json): each file of the evidence pack, and what
``review status --json`` prints, from the campaign's story in tests/test_review.py.
They keep the repository's json contract (README, "The json contract"): snake_case
keys, times as 2026-12-01T09:00:00Z, subjects and projects as {type, id, name}."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from tests.test_review import Story, _pack

REVIEW_SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "schemas" / "review.schema.json"
# The schema's $id: relative, as a script keeping it beside its documents refers to it
# (the other schemas in docs/schemas have no $id at all).
SCHEMA_URI = "review.schema.json"
PACK_FILES = {
    "open": "open.json",
    "close": "close.json",
    "verification": "verification.json",
    "manifest": "manifest.json",
}


def _schema() -> dict[str, Any]:
    schema = json.loads(REVIEW_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == SCHEMA_URI == REVIEW_SCHEMA.name
    return schema


def _validator(which: str | None = None) -> jsonschema.Draft202012Validator:
    """A validator of one ``$defs`` entry, referred to from outside the document as a
    script would; ``None``: the whole document (any of the five)."""
    schema = _schema()
    registry = Registry().with_resource(SCHEMA_URI, DRAFT202012.create_resource(schema))
    target = schema if which is None else {"$ref": f"{SCHEMA_URI}#/$defs/{which}"}
    return jsonschema.Draft202012Validator(
        target,
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def _document(story: Story, which: str) -> Any:
    if which == "status":
        assert story.status.returncode == 0, story.status.stderr
        return json.loads(story.status.stdout)
    return json.loads((_pack(story) / PACK_FILES[which]).read_text(encoding="utf-8"))


def _errors(which: str | None, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator(which).iter_errors(document)
    ]


@pytest.mark.parametrize("which", ["open", "close", "verification", "manifest", "status"])
def test_each_review_json_is_valid_against_its_schema(story: Story, which: str) -> None:
    document = _document(story, which)
    assert document["schema_version"] == 1
    assert _errors(which, document) == []
    # ... and against the document as a whole: exactly one of its five forms
    assert _errors(None, document) == []


def test_the_story_reaches_every_conditional_form(story: Story) -> None:
    # The schema's if/then rules are exercised, not vacuous: an undecided row, a change
    # with its new role, done and outstanding items, a closed campaign with outstanding,
    # a close that allowed undecided rows, items of three kinds, in a project and not.
    close = _document(story, "close")
    assert close["closed"]["allowed_undecided"] is True
    assert [item["decision"] for item in close["undecided"]] == ["undecided"]
    assert {item["decision"] for item in close["requested_changes"]} == {"change", "remove"}
    lines = close["requested_changes"] + close["undecided"]
    assert {(i["kind"], i["subject"]["type"]) for i in lines} == {
        ("user_role", "user"),
        ("api_key", "api_key"),
        ("admin_key", "admin_key"),
    }
    assert {i["project"] is None for i in lines} == {True, False}
    verification = _document(story, "verification")
    assert {item["status"] for item in verification["items"]} == {"done", "outstanding"}
    [campaign] = _document(story, "status")["campaigns"]
    assert campaign["state"] == "closed" and campaign["outstanding"]


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


def _strings(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(inner, str):
                yield key, inner
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


@pytest.mark.parametrize("which", ["open", "close", "verification", "manifest", "status"])
def test_each_review_json_keeps_the_json_contract(story: Story, which: str) -> None:
    # Beyond the schema: every key snake_case, every time (a key ending _at) to the second
    # in UTC with Z, no id left as a bare key beside its object.
    document = _document(story, which)
    keys = set(_keys(document))
    assert {k for k in keys if not re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", k)} == set()
    assert not keys & {"subject_id", "project_id", "scope", "snapshot"}
    assert isinstance(document.get("campaign", {}), dict)  # the campaign's id: campaign_id
    times = {v for k, v in _strings(document) if k.endswith("_at")}
    assert times
    assert {t for t in times if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t)} == set()


def _set(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def _drop(document: Any, path: tuple[Any, ...]) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return changed


def _at(document: Any, key: str, **match: Any) -> int:
    """The index of the first row of ``document[key]`` whose values include ``match``."""
    for index, row in enumerate(document[key]):
        if all(row[k] == v for k, v in match.items()):
            return index
    raise AssertionError(f"no row of {key} with {match}")


def _admin(d: Any) -> tuple[str, int]:
    return "requested_changes", _at(d, "requested_changes", kind="admin_key")


def _api(d: Any) -> tuple[str, int]:
    return "requested_changes", _at(d, "requested_changes", kind="api_key")


def _org_wide(d: Any) -> tuple[str, int]:
    return "requested_changes", _at(d, "requested_changes", kind="user_role", project=None)


USER = {"type": "user", "id": "user_dave", "name": "dave@example.com"}
PROJECT = {"type": "project", "id": "proj_payments", "name": "Payments"}


@pytest.mark.parametrize(
    ("which", "change"),
    [
        ("close", lambda d: _set(d, ("requested_changes", 0, "decision"), "maybe")),
        ("close", lambda d: _set(d, ("undecided", 0, "decision"), "keep")),  # undecided list
        ("close", lambda d: _set(d, ("requested_changes", 0, "reviewer"), None)),
        ("close", lambda d: _set(d, ("undecided", 0, "reviewer"), "frank@example.com")),
        ("close", lambda d: _drop(d, ("requested_changes", 0, "justification"))),
        # items: the kind in words, the subject or project as text, an id beside them
        ("close", lambda d: _set(d, ("requested_changes", 0, "kind"), "user role")),
        ("close", lambda d: _set(d, ("requested_changes", 0, "subject"), "dave@example.com")),
        ("close", lambda d: _set(d, ("requested_changes", 0, "subject_id"), "user_dave")),
        ("close", lambda d: _drop(d, ("requested_changes", 0, "subject", "id"))),
        ("close", lambda d: _set(d, ("requested_changes", 0, "subject", "type"), "person")),
        ("close", lambda d: _set(d, ("requested_changes", 0, "subject", "email"), "d@x")),
        ("close", lambda d: _set(d, (*_api(d), "subject"), USER)),  # kind and subject differ
        ("close", lambda d: _set(d, (*_org_wide(d), "project"), "(organization)")),
        ("close", lambda d: _set(d, (*_api(d), "project"), None)),  # a key is in a project
        ("close", lambda d: _set(d, (*_admin(d), "project"), PROJECT)),  # an admin key is not
        ("close", lambda d: _set(d, ("requested_changes", 0, "project", "type"), "org")),
        ("close", lambda d: _set(d, ("requested_changes", 0, "project", "project_id"), "p")),
        ("close", lambda d: _set(d, (*_api(d), "decision"), "change")),  # a key is not changed
        # the close: no campaign_id of its own, allowed_undecided a boolean
        ("close", lambda d: _drop(d, ("closed", "closed_by"))),
        ("close", lambda d: _set(d, ("closed", "workbook_sha256"), "abc123")),
        ("close", lambda d: _set(d, ("closed", "campaign_id"), d["campaign"]["id"])),
        ("close", lambda d: _set(d, ("closed", "allowed_undecided"), 1)),
        ("close", lambda d: _set(d, ("closed", "allowed_undecided"), False)),  # 1 undecided
        ("close", lambda d: _set(d, ("closed", "closed_at"), "2026-12-01T03:20:47+00:00")),
        ("close", lambda d: _set(d, ("decisions", "maybe"), 0)),
        ("close", lambda d: _set(d, ("population", "API key"), 1)),
        ("close", lambda d: _drop(d, ("population", "api_key"))),
        # the campaign: projects a list of ids, not the scope's text
        ("open", lambda d: _drop(d, ("campaign", "roster_name"))),
        ("open", lambda d: _drop(d, ("campaign", "projects"))),
        ("open", lambda d: _set(d, ("campaign", "projects"), '{"projects": []}')),
        ("open", lambda d: _set(d, ("campaign", "projects"), ["proj_a", "proj_a"])),
        ("open", lambda d: _set(d, ("campaign", "scope"), '{"projects": []}')),
        ("open", lambda d: _set(d, ("campaign", "opened_at"), "2026-12-01T03:20:47")),  # no zone
        ("open", lambda d: _set(d, ("campaign", "opened_at"), "2026-12-01T03:20:47+00:00")),
        ("open", lambda d: _set(d, ("campaign", "opened_at"), "2026-12-01T03:20:47.5Z")),
        ("open", lambda d: _set(d, ("campaign", "opened_at"), "2026-12-01 03:20:47Z")),
        ("open", lambda d: _set(d, ("campaign", "due_on"), "2026-02-30")),  # format checked
        ("open", lambda d: _set(d, ("campaign", "snapshot_id"), "1")),
        ("open", lambda d: _set(d, ("population", "user role"), 1)),
        ("verification", lambda d: _set(d, ("items", 0, "status"), "finished")),
        ("verification", lambda d: _set(d, ("items", 0, "decision"), "keep")),
        ("verification", lambda d: _set(d, ("items", 0, "first_seen_done_at"), None)),
        ("verification", lambda d: _set(d, ("items", 0, "extra"), 1)),
        ("verification", lambda d: _set(d, ("items", 0, "subject_id"), "user_dave")),
        ("verification", lambda d: _set(d, ("items", 0, "project"), "Payments")),
        ("verification", lambda d: _set(d, ("items", 0, "asked"), "")),
        ("verification", lambda d: _set(d, ("verified_at",), "2026-12-01T03:20:47+00:00")),
        ("verification", lambda d: {**_drop(d, ("campaign_id",)), "campaign": d["campaign_id"]}),
        ("manifest", lambda d: _set(d, ("files", 0, "stage"), "reopen")),
        ("manifest", lambda d: _drop(d, ("files", 0, "sha256"))),
        ("manifest", lambda d: _set(d, ("files", 0, "written_at"), "2026-12-01T03:20:47.123Z")),
        ("manifest", lambda d: {**_drop(d, ("campaign_id",)), "campaign": d["campaign_id"]}),
        ("manifest", lambda d: {**_drop(d, ("snapshot_id",)), "snapshot": d["snapshot_id"]}),
        ("status", lambda d: _set(d, ("campaigns", 0, "state"), "done")),
        ("status", lambda d: _set(d, ("campaigns", 0, "outstanding", 0, "status"), "done")),
        ("status", lambda d: _set(d, ("campaigns", 0, "verified_at"), "2026-12-01T03:20:47")),
        ("status", lambda d: _drop(d, ("campaigns", 0, "outstanding", 0, "latest_snapshot"))),
        ("status", lambda d: _set(d, ("campaigns", 0, "outstanding", 0, "snapshot_id"), 2)),
        ("status", lambda d: _set(d, ("campaigns", 0, "outstanding", 0, "latest_snapshot"), None)),
        ("status", lambda d: _set(d, ("campaigns", 0, "outstanding", 0, "campaign_id"), "x")),
        (
            "status",
            lambda d: _set(
                d,
                ("campaigns", 0),
                {**_drop(d, ("campaigns", 0, "campaign_id"))["campaigns"][0], "campaign": "x"},
            ),
        ),
    ],
)
def test_a_wrong_value_or_a_missing_key_is_refused(
    story: Story,
    which: str,
    change: Any,
) -> None:
    document = _document(story, which)
    changed = change(document)
    assert json.dumps(changed) != json.dumps(document)  # True == 1 in Python, not in json
    assert _errors(which, changed), f"{which}: the schema accepted {changed}"
    assert _errors(None, changed), f"the whole schema accepted this {which}"


def test_one_form_is_not_taken_for_another(story: Story) -> None:
    # A manifest is no verification, a close is no open (nor an open a close).
    assert _errors("verification", _document(story, "manifest"))
    close = _document(story, "close")
    assert _errors("open", close)
    assert _errors("close", _document(story, "open"))
    assert _errors("status", {"schema_version": 1, "campaigns": [], "extra": True})
    assert _errors(None, {"schema_version": 2, "campaigns": []})
