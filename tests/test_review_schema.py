"""The json of access-review campaigns against its published schema
(docs/schemas/review.schema.json): each file of the evidence pack, and what
``review status --json`` prints, from the campaign's story in tests/test_review.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from tests.test_review import Story, _pack, story  # noqa: F401

REVIEW_SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "schemas" / "review.schema.json"
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


def _document(story: Story, which: str) -> Any:  # noqa: F811
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
def test_each_review_json_is_valid_against_its_schema(story: Story, which: str) -> None:  # noqa: F811
    document = _document(story, which)
    assert document["schema_version"] == 1
    assert _errors(which, document) == []
    # ... and against the document as a whole: exactly one of its five forms
    assert _errors(None, document) == []


def test_the_story_reaches_every_conditional_form(story: Story) -> None:  # noqa: F811
    # The schema's if/then rules are exercised, not vacuous: an undecided row, a change
    # with its new role, done and outstanding items, a closed campaign with outstanding.
    close = _document(story, "close")
    assert [item["decision"] for item in close["undecided"]] == ["undecided"]
    assert {item["decision"] for item in close["requested_changes"]} == {"change", "remove"}
    verification = _document(story, "verification")
    assert {item["status"] for item in verification["items"]} == {"done", "outstanding"}
    [campaign] = _document(story, "status")["campaigns"]
    assert campaign["state"] == "closed" and campaign["outstanding"]


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


@pytest.mark.parametrize(
    ("which", "change"),
    [
        ("close", lambda d: _set(d, ("requested_changes", 0, "decision"), "maybe")),
        ("close", lambda d: _set(d, ("undecided", 0, "decision"), "keep")),  # undecided list
        ("close", lambda d: _set(d, ("requested_changes", 0, "reviewer"), None)),
        ("close", lambda d: _set(d, ("undecided", 0, "reviewer"), "frank@example.com")),
        ("close", lambda d: _drop(d, ("requested_changes", 0, "justification"))),
        ("close", lambda d: _drop(d, ("closed", "closed_by"))),
        ("close", lambda d: _set(d, ("closed", "workbook_sha256"), "abc123")),
        ("close", lambda d: _set(d, ("decisions", "maybe"), 0)),
        ("open", lambda d: _drop(d, ("campaign", "roster_name"))),
        ("open", lambda d: _set(d, ("campaign", "opened_at"), "2026-12-01T03:20:47")),  # no zone
        ("open", lambda d: _set(d, ("campaign", "due_on"), "2026-02-30")),  # format checked
        ("open", lambda d: _set(d, ("campaign", "snapshot_id"), "1")),
        ("verification", lambda d: _set(d, ("items", 0, "status"), "finished")),
        ("verification", lambda d: _set(d, ("items", 0, "decision"), "keep")),
        ("verification", lambda d: _set(d, ("items", 0, "first_seen_done_at"), None)),
        ("verification", lambda d: _set(d, ("items", 0, "extra"), 1)),
        ("manifest", lambda d: _set(d, ("files", 0, "stage"), "reopen")),
        ("manifest", lambda d: _drop(d, ("files", 0, "sha256"))),
        ("status", lambda d: _set(d, ("campaigns", 0, "state"), "done")),
        ("status", lambda d: _set(d, ("campaigns", 0, "outstanding", 0, "status"), "done")),
    ],
)
def test_a_wrong_value_or_a_missing_key_is_refused(
    story: Story,  # noqa: F811
    which: str,
    change: Any,
) -> None:
    document = _document(story, which)
    changed = change(document)
    assert changed != document
    assert _errors(which, changed), f"{which}: the schema accepted {changed}"
    assert _errors(None, changed), f"the whole schema accepted this {which}"


def test_one_form_is_not_taken_for_another(story: Story) -> None:  # noqa: F811
    # A manifest is no verification, a close without its close is no open.
    assert _errors("verification", _document(story, "manifest"))
    close = _document(story, "close")
    assert _errors("open", close)
    assert _errors("status", {"schema_version": 1, "campaigns": [], "extra": True})
    assert _errors(None, {"schema_version": 2, "campaigns": []})
