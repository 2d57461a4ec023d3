"""Leaked-key triage: `explain key --value-stdin` traces a pasted key to the key it is,
and the value reaches no output, file or database (tested like the admin key)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from tests.support import FIXED, Audited, cli_env

from orgaudit.errors import UsageError
from orgaudit.model.spend import money
from orgaudit.settings import KeyValue, read_key_value
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.usage import expected_cost

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "schemas" / "explain.schema.json"
# bob-laptop's redacted value in the demo is sk-proj-...0009: a full key that fits it,
# with a middle no other output could hold by chance.
LEAKED = "sk-proj-LEAKEDtestVALUE7q2w9e8r1t5y0009"
SECRET_PART = "LEAKEDtestVALUE7q2w9e8r1t5y"


def _trace(db: Path, cwd: Path, stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "orgaudit",
            "explain",
            "key",
            "--value-stdin",
            "--db",
            str(db),
            *args,
        ],
        input=stdin,
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def demo(demo_audit: Audited, tmp_path: Path) -> Path:
    copy = tmp_path / "orgaudit.db"
    copy.write_bytes(demo_audit.db.read_bytes())
    copy.chmod(0o600)
    return copy


def test_a_leaked_key_is_traced_to_its_key_and_never_shown(demo: Path, tmp_path: Path) -> None:
    ran = _trace(demo, tmp_path, LEAKED.encode() + b"\n")
    assert ran.returncode == 0, ran.stderr
    out = ran.stdout.decode()
    assert out.startswith("LIVE: revoke it now: it fits bob-laptop (Payments)")
    assert "owner: bob@example.com (user)" in out
    assert (
        "DELETE https://api.openai.com/v1/organization/projects/proj_payments/api_keys/key_000009"
        in out
    )
    assert "what it can reach:" in out and "scopes: unrestricted" in out
    # Its recent spend, from the snapshot's Costs and Usage lists (the simulator's history).
    org = demo_org(int(FIXED.timestamp()))
    with sqlite3.connect(demo) as conn:
        (since,) = conn.execute("SELECT usage_since FROM snapshots").fetchone()
    amount = expected_cost(org, "key_000009", since, int(FIXED.timestamp()))
    assert f"spend: {money(amount, 'usd').replace('usd', 'USD')} and " in out
    assert "in the 30 days since 2026-05-02" in out
    for text in (ran.stdout, ran.stderr):
        assert SECRET_PART.encode() not in text
    for path in tmp_path.rglob("*"):  # the database, its journal, anything written
        if path.is_file():
            assert SECRET_PART.encode() not in path.read_bytes(), path


def test_the_trace_as_json_follows_the_explain_schema(demo: Path, tmp_path: Path) -> None:
    ran = _trace(demo, tmp_path, LEAKED.encode(), "--json")
    assert ran.returncode == 0, ran.stderr
    document = json.loads(ran.stdout)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    [match] = document["matches"]
    assert (match["id"], match["type"], match["usable"]) == ("key_000009", "api_key", "allowed")
    assert match["last_used_at"].endswith("Z")
    assert SECRET_PART not in ran.stdout.decode()


def test_a_redacted_form_lists_every_key_it_may_be(demo: Path, tmp_path: Path) -> None:
    ran = _trace(demo, tmp_path, b"sk-proj-...0009", "--json")
    assert [m["name"] for m in json.loads(ran.stdout)["matches"]] == ["bob-laptop"]
    # Two keys whose redacted values are the same: a redacted form cannot tell them apart
    with sqlite3.connect(demo) as conn:
        conn.execute(
            "UPDATE project_api_keys SET redacted_value = 'sk-proj-...0009' "
            "WHERE name = 'heidi-old'"
        )
    several = json.loads(_trace(demo, tmp_path, b"sk-...0009", "--json").stdout)
    assert {m["name"] for m in several["matches"]} == {"bob-laptop", "heidi-old"}
    assert several["summary"].startswith("2 keys fit it; revoke each that may be it")


def test_an_admin_key_is_traced_to_the_admin_keys_page(demo: Path, tmp_path: Path) -> None:
    ran = _trace(demo, tmp_path, b"sk-admin-LEAKEDadminVALUEpadding1234567030")
    out = ran.stdout.decode()
    assert "admin key old-admin (key_000030)" in out
    assert "https://platform.openai.com/settings/organization/admin-keys" in out
    assert "LEAKEDadminVALUE" not in out


def test_a_value_no_key_fits_says_so(demo: Path, tmp_path: Path) -> None:
    ran = _trace(demo, tmp_path, b"sk-proj-unknownKEYvalueWITHpadding12349999")
    assert ran.returncode == 0
    assert ran.stdout.decode().startswith("NOT FOUND: no key in snapshot 1")


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"", "no key value on standard input"),
        (b"sk-proj-abc def0009", "white space"),
        ("sk-proj-é0009".encode(), "not ASCII"),
        (b"x" * 2000, "more than 1,024 bytes"),
        (b"sk-...09", "too little of the key"),
        (b"ghp_abcdefghijklmnopqrstuvwxyz0123456789", "does not look like an OpenAI key"),
        (b"sk-proj-short0009", "too short to be a whole key"),
    ],
)
def test_bad_input_is_one_line_without_the_value(
    demo: Path, tmp_path: Path, stdin: bytes, message: str
) -> None:
    ran = _trace(demo, tmp_path, stdin)
    assert ran.returncode == 2
    assert ran.stderr.decode().count("\n") == 1 and message in ran.stderr.decode()
    assert not stdin.strip() or stdin.strip()[:12] not in ran.stderr


def test_a_key_and_value_stdin_together_are_refused(demo: Path, tmp_path: Path) -> None:
    ran = _trace(demo, tmp_path, LEAKED.encode(), "bob-laptop")
    assert ran.returncode == 2 and b"give KEY" in ran.stderr


def test_the_value_never_shows_itself() -> None:
    value = KeyValue(LEAKED)
    assert SECRET_PART not in repr(value) and SECRET_PART not in str(value)
    with pytest.raises(TypeError):
        __import__("pickle").dumps(value)
    assert value.matches("sk-proj-...0009")
    assert not value.matches("sk-proj-...0011")
    assert not value.matches("sk-admin...009")
    with pytest.raises(UsageError):
        read_key_value(b"\xff")


@pytest.mark.parametrize(
    "pasted",
    [
        b'"' + LEAKED.encode() + b'"',
        b"OPENAI_API_KEY=" + LEAKED.encode() + b"\n",
        b"'" + LEAKED.encode() + b"'\r\n",
    ],
)
def test_a_key_pasted_with_its_quotes_or_name_is_still_traced(
    demo: Path, tmp_path: Path, pasted: bytes
) -> None:
    ran = _trace(demo, tmp_path, pasted)
    assert ran.returncode == 0, ran.stderr
    assert b"it fits bob-laptop (Payments)" in ran.stdout
    assert SECRET_PART.encode() not in ran.stdout + ran.stderr


def test_keys_that_could_not_be_compared_make_it_cannot_tell(demo: Path, tmp_path: Path) -> None:
    with sqlite3.connect(demo) as conn:
        conn.execute("UPDATE coverage SET status = 'unavailable' WHERE source = 'project_api_keys'")
        conn.execute("DELETE FROM project_api_keys")
    ran = _trace(demo, tmp_path, LEAKED.encode(), "--json")
    document = json.loads(ran.stdout)
    assert document["matches"] == [] and document["decision"] == "unknown"
    assert "project_api_keys not read in full" in document["not_compared"]
    text = _trace(demo, tmp_path, LEAKED.encode()).stdout.decode()
    assert text.startswith("CANNOT TELL: no key snapshot 1 could compare fits it")
