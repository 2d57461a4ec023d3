"""Hostile data: spec-shaped objects with unexpected values, through the whole path.

Property tests (hypothesis) put odd values into an org's users, members, service
accounts, keys, projects and invites: unknown roles and enum values, nulls and missing
optional fields, numbers where text belongs and text where numbers belong, huge and
unicode names, control characters, lone surrogates, formula-like strings, items listed
twice, keys whose owner is neither a user nor a service account. The org is served by
the simulator over real HTTP, pulled into real SQLite, audited into every report format
and explained. Nothing may crash, and every odd value must surface as an
``unrecognized-value`` finding: never silently dropped.

A second group feeds the client arbitrary page bodies over HTTP: each is read, or refused
with a one-line error naming the endpoint.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from orgaudit.app.audit import AuditOptions
from orgaudit.collect import sources
from orgaudit.collect.client import AdminClient
from orgaudit.errors import OrgauditError
from orgaudit.explain import explain_key, explain_user
from orgaudit.model.access import level_for
from orgaudit.model.catalog import load_catalog
from orgaudit.render.explain_text import key_text, user_text
from orgaudit.render.report import WRITERS
from orgaudit.render.report.escape import FORMULA_PREFIXES
from orgaudit.settings import AdminKey
from orgaudit.simulator import Fault, SimOrg, Simulator

from support import ADMIN_KEY, fast_settings, load_analysis, pull_fixed, run_audit, small_org

MISSING = object()  # an edit that removes the field altogether

FORMULAS = ('=HYPERLINK("http://evil","x")', "+1+1", "-2", "@SUM(A1)", "\t=1", "\r=1")
# Any code point, lone surrogates included (JSON can carry them; UTF-8 cannot).
any_char = st.characters(codec=None, categories=None)
odd_text = st.one_of(
    st.text(any_char, max_size=40),
    st.sampled_from(FORMULAS),
    st.sampled_from(("", " ", "\x00", "\x1b[31mred", "Ω≈ç√", "👩‍💻" * 3, "a\nb\r\nc")),
    st.integers(32_000, 70_000).map(lambda n: "é" * n),  # past Excel's 32,767 per cell
)
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
catalog = load_catalog()
KNOWN = {known.field: known.values for known in catalog.known_values}


def coded(field: str, *, can_be_missing: bool = True) -> st.SearchStrategy[object]:
    """A coded field's value: a known one, an unknown string, absent, or anything at all."""
    values = st.one_of(
        st.sampled_from(sorted(KNOWN[field])),
        st.text(any_char, min_size=1, max_size=20),
        json_value,
    )
    return values | st.just(MISSING) if can_be_missing else values


def anything() -> st.SearchStrategy[object]:
    return st.one_of(st.just(MISSING), json_value)


# What each edit target is, which table its object lands in, and what may be changed.
TARGETS: dict[str, tuple[str, dict[str, st.SearchStrategy[object]]]] = {
    "user": (
        "users",
        {
            "role": coded("users.role"),
            "name": anything(),
            "email": anything(),
            "added_at": anything(),
        },
    ),
    "member": (
        "project_users",
        {
            "role": coded("project_users.role"),
            "name": anything(),
            "email": anything(),
            "added_at": anything(),
        },
    ),
    "account": (
        "project_service_accounts",
        {"role": coded("project_service_accounts.role"), "name": anything()},
    ),
    "key": (
        "project_api_keys",
        {
            "name": anything(),
            "created_at": anything(),
            "last_used_at": anything(),
            "owner_project_access": coded("project_api_keys.owner_project_access"),
            "owner": st.one_of(
                st.just(MISSING),
                json_value,
                st.fixed_dictionaries(
                    {"type": coded("project_api_keys.owner_type", can_be_missing=False)}
                ),
                st.fixed_dictionaries(
                    {
                        "type": st.just("user"),
                        "user": st.fixed_dictionaries({"id": st.just("user_nobody")}),
                    }
                ),
            ),
        },
    ),
    "project": (
        "projects",
        {"name": anything(), "status": coded("projects.status"), "created_at": anything()},
    ),
    "invite": (
        "invites",
        {"role": coded("invites.role"), "status": coded("invites.status"), "email": anything()},
    ),
}
Edit = tuple[str, str, object]


def edit_of(target: str) -> st.SearchStrategy[Edit]:
    fields = TARGETS[target][1]
    return st.sampled_from(sorted(fields)).flatmap(
        lambda name: st.tuples(st.just(target), st.just(name), fields[name])
    )


edits = st.lists(st.one_of(*(edit_of(t) for t in TARGETS)), max_size=6)
duplicates = st.lists(st.sampled_from(("user", "member", "key")), max_size=2)


def base_org() -> SimOrg:
    builder = small_org(3)
    builder.service_account("proj_only", "robot", "member")
    builder.key("proj_only", "user_0000", "main key", scopes=["api.all.read"])
    builder.invite("new@example.com", "reader", "pending", sent_days_ago=1, expires_in_days=6)
    return builder.org


def target_object(org: SimOrg, target: str) -> dict[str, Any]:
    objects: dict[str, Callable[[], dict[str, Any]]] = {
        "user": lambda: org.users[1],
        "member": lambda: org.project_users["proj_only"][1],
        "account": lambda: org.project_service_accounts["proj_only"][0],
        "key": lambda: org.project_api_keys["proj_only"][0],
        "project": lambda: org.projects[0],
        "invite": lambda: org.invites[0],
    }
    return objects[target]()


def hostile_org(changes: list[Edit], repeated: list[str]) -> SimOrg:
    org = base_org()
    for target, name, value in changes:
        obj = target_object(org, target)
        if value is MISSING:
            obj.pop(name, None)
        else:
            obj[name] = value
    lists = {
        "user": org.users,
        "member": org.project_users["proj_only"],
        "key": org.project_api_keys["proj_only"],
    }
    for target in repeated:
        lists[target].append(json.loads(json.dumps(lists[target][0])))
    return org


def expected_field(table: str, name: str, value: object) -> str | None:
    """The ``table.column`` an odd value must be reported under, or None if it is fine."""
    if value is MISSING or value is None:
        column = "owner_type" if name == "owner" else name
        return f"{table}.{column}" if f"{table}.{column}" in KNOWN else None
    if name == "owner":
        kind = value.get("type", MISSING) if isinstance(value, dict) else MISSING
        return expected_field(table, "owner_type", kind)
    field = f"{table}.{name}"
    if field in KNOWN:
        return None if isinstance(value, str) and value in KNOWN[field] else field
    if name.endswith("_at"):
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        fits = whole and not isinstance(value, bool) and -(2**63) <= value < 2**63  # type: ignore[operator]
        return None if fits else field
    if not isinstance(value, str):
        return field  # text columns: a number or an object is stored as its JSON
    return None if _valid_unicode(value) else field


def _shown(value: str) -> str:
    """A value as the unrecognized-value finding quotes it: cut to 80 characters."""
    return repr(value[:80] + ("..." if len(value) > 80 else ""))


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


counter = itertools.count()


@given(changes=edits, repeated=duplicates)
# Found by an explore run: a bare CR in a csv cell started a new row in Excel, "=1" first.
@example(changes=[("user", "email", "\r=1")], repeated=[])
@example(changes=[("member", "name", "x\r=1+1"), ("project", "name", "@A1\r\n-2")], repeated=[])
def test_hostile_values_never_crash_and_are_all_reported(
    tmp_path: Path, changes: list[Edit], repeated: list[str]
) -> None:
    work = tmp_path / f"example-{next(counter)}"
    org = hostile_org(changes, repeated)
    db, out = work / "orgaudit.db", work / "out"
    pull_fixed(org, db)
    result = run_audit(db, AuditOptions(out_dir=out, formats=tuple(WRITERS)))

    odd = {f.subject_id for f in result.findings if f.check_id == "unrecognized-value"}
    final = {(target, name): value for target, name, value in changes}  # the last edit wins
    # An archived project's member and service-account lists answer 400 (spec), so what
    # was put in them is never read; everything else must be reported.
    unread = {"member", "account"} if final.get(("project", "status")) == "archived" else set()
    for (target, name), value in final.items():
        if target in unread:
            continue
        table = TARGETS[target][0]
        field = expected_field(table, name, value)
        if field is None:
            continue
        if field in KNOWN and isinstance(value, str) and _valid_unicode(value):
            assert f"{field} {_shown(value)}" in odd, (field, value)  # this very value
        else:
            assert any(s == field or s.startswith(field + " ") for s in odd), (field, value)
    for target in set(repeated) - unread:
        assert TARGETS[target][0] in odd

    # A role orgaudit does not know can only make a verdict unknown, never a denial
    # (in an active project: in an archived one no keys can be made whatever the role).
    model = load_analysis(db, None, None).model
    odd_role = any(
        expected_field(TARGETS[target][0], "role", value) is not None
        for (target, name), value in final.items()
        if target in {"user", "member"} - unread and name == "role"
    )
    there = level_for(model, "user_0001", "proj_only")
    if odd_role and not there["archived"]:
        assert there["verdict"] != "denied"

    _reports_read_back(out)
    analysis = load_analysis(db, None, None)
    for user_id in analysis.snapshot["users"]["id"]:
        assert user_text(explain_user(analysis.snapshot, analysis.model, catalog, user_id))
    for key_id in analysis.snapshot["project_api_keys"]["id"]:
        verdict = explain_key(analysis.snapshot, analysis.model, catalog, key_id, "/v1/responses")
        assert key_text(verdict)


def _reports_read_back(out: Path) -> None:
    """Every report parses, and no spreadsheet cell can run as a formula."""
    (json_path,) = out.glob("*.json")
    report = json.loads(json_path.read_text(encoding="utf-8"))
    assert report["findings"] is not None
    # A name may be far longer than csv's 128 KiB default; the limit is the process's,
    # so it is put back for the tests that rely on it.
    default_limit = csv.field_size_limit(1 << 30)
    try:
        csv_paths = list(out.glob("*-csv/*.csv"))
        assert len(csv_paths) > 10
        for path in csv_paths:
            with path.open(encoding="utf-8", newline="") as handle:
                for row in csv.reader(handle):
                    assert not any(cell.startswith(FORMULA_PREFIXES) for cell in row), row
    finally:
        csv.field_size_limit(default_limit)
    (xlsx_path,) = out.glob("*.xlsx")
    workbook = openpyxl.load_workbook(xlsx_path)
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert len(cell.value) <= 32_767
    (md_path,) = out.glob("*.md")
    assert md_path.read_text(encoding="utf-8")


def test_a_deliberately_hostile_org_reports_each_odd_value_once_per_field_and_value(
    tmp_path: Path,
) -> None:
    changes: list[Edit] = [
        ("user", "role", "billing_admin"),
        ("user", "added_at", "yesterday"),
        ("member", "role", None),
        ("key", "owner", {"type": "robot", "robot": {"id": "user_0002", "name": "R2"}}),
        ("project", "name", "bad \ud800 name"),
        ("invite", "status", "revoked"),
        ("invite", "role", 5),
    ]
    org = hostile_org(changes, ["user", "user"])
    pull_fixed(org, tmp_path / "h.db")
    result = run_audit(tmp_path / "h.db", AuditOptions(out_dir=tmp_path / "out", formats=("json",)))
    odd = {f.subject_id: f.message for f in result.findings if f.check_id == "unrecognized-value"}
    assert set(odd) == {
        "users.role 'billing_admin'",
        "users.added_at 'yesterday'",
        "project_users.role missing",
        "project_api_keys.owner_type 'robot'",
        "projects.name 'bad \ufffd name'",
        "invites.status 'revoked'",
        "invites.role '5'",
        "users",
    }
    assert odd["users"] == "users lists the same item twice; kept once (1 item(s): user_0000)"
    assert "(owner, reader)" in odd["users.role 'billing_admin'"]
    # A number in a coded text field: stored as its JSON, and unknown; one finding.
    assert odd["invites.role '5'"].startswith(
        "invites.role '5' is not text; stored as its JSON and is not a value the catalog knows"
    )
    assert odd["invites.role '5'"].endswith("(1 item(s): invite-000004)")
    assert all(f.severity == "info" for f in result.findings if f.check_id == "unrecognized-value")
    # The unknown role leaves that user's verdicts unknown, never allowed or denied.
    analysis = load_analysis(tmp_path / "h.db", None, None)
    levels = analysis.model.levels
    user_1 = levels[levels["principal_id"] == "user_0001"]
    assert set(user_1["verdict"]) == {"unknown"}
    # A key whose owner is of an unknown type: what the owner may do is unknown, so a
    # request the key's own scopes allow is unknown too, not denied.
    (key_id,) = analysis.snapshot["project_api_keys"]["id"]
    verdict = explain_key(analysis.snapshot, analysis.model, catalog, key_id, "GET /v1/models")
    assert verdict.decision == "unknown"
    assert "(robot)" in key_text(verdict)


# -- arbitrary page bodies through the client ------------------------------------------------

page_fields = st.fixed_dictionaries(
    {},
    optional={
        "object": st.one_of(st.just("list"), json_value),
        "data": st.one_of(
            st.lists(st.dictionaries(st.sampled_from(("id", "name", "role")), json_value)),
            json_value,
        ),
        "has_more": st.one_of(st.booleans(), json_value),
        "last_id": st.one_of(st.text(max_size=10), json_value),
        "first_id": json_value,
    },
)
bodies = st.one_of(
    page_fields.map(lambda page: json.dumps(page).encode()),
    json_value.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
)


@pytest.fixture(scope="module")
def page_server() -> Any:
    with Simulator(base_org(), admin_key=ADMIN_KEY) as sim:
        yield sim


@given(body=bodies)
def test_any_page_body_is_read_or_refused_in_one_line(page_server: Simulator, body: bytes) -> None:
    page_server.faults = [
        Fault("body", path="^/organization/users$", times=-1, status=200, body=body)
    ]
    settings = fast_settings(page_server, max_pages=20)

    async def read() -> list[dict[str, Any]]:
        async with AdminClient(AdminKey(ADMIN_KEY), settings, sleep=_no_sleep) as client:
            return await client.list_all(sources.USERS.endpoint, sources.USERS.endpoint.path)

    try:
        items = asyncio.run(read())
    except OrgauditError as exc:
        message = str(exc)
        assert "\n" not in message and "/organization/users" in message
        assert ADMIN_KEY not in message
    else:
        assert all(isinstance(item, dict) for item in items)
        assert len(items) <= 20 * sources.USERS.endpoint.max_limit


async def _no_sleep(_delay: float) -> None:
    return None


@pytest.mark.parametrize("value", [math.nan, math.inf, 2**64, -(2**64), 1.5, True])
def test_numbers_sqlite_cannot_hold_as_a_time_are_reported(tmp_path: Path, value: object) -> None:
    org = hostile_org([("key", "last_used_at", value)], [])
    pull_fixed(org, tmp_path / "n.db")
    result = run_audit(tmp_path / "n.db", AuditOptions(out_dir=tmp_path / "out", formats=("json",)))
    odd = [f for f in result.findings if f.check_id == "unrecognized-value"]
    assert [f.subject_id.split(" ")[0] for f in odd] == ["project_api_keys.last_used_at"]
    assert "is not an integer; stored as missing" in odd[0].message


@pytest.mark.parametrize("value", [2**62, 10**12, -(10**11), -1])
def test_integers_that_are_no_time_are_reported_not_read_as_dates(
    tmp_path: Path, value: int
) -> None:
    # In SQLite's range but past the year 9999 (or before 1970): no time anyone meant, and
    # no date pandas or a spreadsheet can hold. Stored as missing, each reported.
    org = hostile_org([("key", "last_used_at", value)], [])
    pull_fixed(org, tmp_path / "t.db")
    result = run_audit(tmp_path / "t.db", AuditOptions(out_dir=tmp_path / "out", formats=("json",)))
    odd = [f for f in result.findings if f.check_id == "unrecognized-value"]
    assert [f.subject_id.split(" ")[0] for f in odd] == ["project_api_keys.last_used_at"]
    assert "is not a time between 1970 and 9999; stored as missing" in odd[0].message


def test_projects_sharing_a_name_get_headers_of_their_own_in_the_access_matrix(
    tmp_path: Path,
) -> None:
    builder = small_org(2)
    for project_id, name in (("proj_a", "Same"), ("proj_b", "Same"), ("proj_c", "Same (proj_a)")):
        builder.project(name, project_id=project_id)
        builder.member(project_id, "user_0000", "member")
    pull_fixed(builder.org, tmp_path / "names.db")
    out = tmp_path / "out"
    run_audit(tmp_path / "names.db", AuditOptions(out_dir=out, formats=("csv",)))
    (matrix,) = out.glob("*-csv/access-matrix.csv")
    with matrix.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert len(header) == len(set(header)) == 5  # the user column and four projects
    assert {"Only", "Same (proj_b)"} <= set(header)
