"""Names that attack the reader: terminal control sequences and HTML in an org's names.

Anyone who can name a key, a project, a user, a group or a service account writes into
orgaudit's output. An org whose names hold OSC 52 (set the clipboard), OSC 8 (plant a
hyperlink), OSC 0 (the window title), CSI 2J (clear the screen), the C1 form of CSI, bidi
overrides, newlines that forge an orgaudit line, and HTML and link payloads is pulled over
real HTTP and put through every command that prints and every report format. No control
character may reach standard output, standard error or a report file, every name must
still be visible (escaped), and the markdown report must render with no HTML, link or
image made of the names.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import openpyxl
import pytest
from markdown_it import MarkdownIt

from orgaudit.simulator import Fault, Simulator
from orgaudit.simulator.org import OrgBuilder, SimOrg

from support import ADMIN_KEY, NOW, Run, run_cli

OSC_52 = "\x1b]52;c;cm0gLXJmIH4=\x07"
OSC_8 = "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\"
OSC_TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J\x1b[H"
C1_CSI = "\x9b31m"
BIDI = "\u202egnp.exe\u202c"
FORGED = "ok\norgaudit: all clear, 0 findings\r"
SCRIPT = "<script>alert(1)</script>"
IMAGE = "<img src=x onerror=alert(1)>"
LINK = "[docs](javascript:alert(1))"

USER_NAME = f"Mallory {OSC_52}{SCRIPT}"
USER_EMAIL = "mallory@example.com"
PROJECT = f"Pay{CLEAR}{BIDI}"
KEY = f"key{OSC_8}{FORGED}{IMAGE}"
SERVICE_ACCOUNT = f"bot{C1_CSI}{OSC_TITLE}"
GROUP = f"admins{LINK}\u2066"

# Anything a terminal could obey: C0 but the newline, DEL, C1, and the invisible
# characters that reorder or split lines.
UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _org(extra_key: str | None = None) -> tuple[SimOrg, str]:
    """The hostile org, and its restricted key's id."""
    builder = OrgBuilder("org_hostile_names", NOW)
    project = builder.project(PROJECT, project_id="proj_evil")
    mallory = builder.user(USER_NAME, USER_EMAIL, "owner", user_id="user_mallory")
    builder.member(project, mallory, "owner")
    key = builder.key(project, mallory, KEY, scopes=["api.model.read"])
    bot = builder.service_account(project, SERVICE_ACCOUNT)
    builder.key(project, bot, f"{KEY}-bot", scopes=[])
    builder.group(GROUP, [mallory])
    if extra_key is not None:
        builder.key(project, mallory, extra_key, scopes=[])
    return builder.org, key


KEY_ID = _org()[1]


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Run]]:
    """The hostile org pulled twice (a key added in between, so the diff has a change)."""
    folder = tmp_path_factory.mktemp("hostile-names")
    db = folder / "db"
    runs = []
    for org, _ in (_org(), _org(extra_key=f"new{OSC_52}{FORGED}")):
        with Simulator(org, admin_key=ADMIN_KEY) as sim:
            runs.append(run_cli("pull", "--db", db, "--base-url", sim.base_url,
                                cwd=folder, OPENAI_ADMIN_KEY=ADMIN_KEY))  # fmt: skip
    return db, runs


def _assert_inert(run: Run, what: str) -> None:
    for stream, text in (("stdout", run.stdout), ("stderr", run.stderr)):
        found = UNSAFE.search(text)
        assert found is None, f"{what}: {stream} holds {found.group()!r}: {text[:400]!r}"
        assert not re.search(r"^orgaudit: all clear", text, re.MULTILINE), (what, text)


COMMANDS = {
    "audit": ("audit", "--offline", "--format", "csv,json,md,xlsx", "--queries", "--out", "{out}"),
    "explain user": ("explain", "user", USER_EMAIL, "--project", "proj_evil"),
    "explain user --json": ("explain", "user", USER_EMAIL, "--json"),
    "explain key": ("explain", "key", KEY_ID, "--endpoint", "POST /v1/responses"),
    "explain key --json": ("explain", "key", KEY_ID, "--json"),
    "explain error": (
        "explain", "error", f"Missing scopes: model.request {CLEAR}", "--key", KEY_ID,
    ),
    "explain error --json": (
        "explain", "error", f"Missing scopes: model.request {OSC_52}", "--key", KEY_ID, "--json",
    ),
    "query table": ("query", "admin-keys"),
    "query users": ("query", "users-cannot-create-keys"),
    "query csv": ("query", "users-cannot-create-keys", "--format", "csv"),
    "query json": ("query", "users-cannot-create-keys", "--format", "json"),
    "snapshots": ("snapshots",),
    "diff": ("diff",),
    "diff --json": ("diff", "--json"),
}  # fmt: skip


def test_pulling_hostile_names_prints_nothing_a_terminal_obeys(
    pulled: tuple[Path, list[Run]],
) -> None:
    _, runs = pulled
    for run in runs:
        assert run.returncode == 0, run.stderr
        _assert_inert(run, "pull")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_prints_hostile_names_escaped(
    pulled: tuple[Path, list[Run]], tmp_path: Path, command: str
) -> None:
    db, _ = pulled
    args = [arg.format(out=tmp_path) for arg in COMMANDS[command]]
    run = run_cli(*args, "--db", db, cwd=tmp_path)
    assert run.returncode in (0, 1), (command, run.stdout, run.stderr)
    _assert_inert(run, command)


def test_explain_shows_the_hostile_names_escaped_not_dropped(
    pulled: tuple[Path, list[Run]], tmp_path: Path
) -> None:
    db, _ = pulled
    run = run_cli("explain", "key", KEY_ID, "--db", db, cwd=tmp_path)
    assert r"key\x1b]8;;https://evil.example/\x1b\click me" in run.stdout, run.stdout
    assert r"\norgaudit: all clear, 0 findings\r" in run.stdout
    user = run_cli("explain", "user", USER_EMAIL, "--project", "proj_evil", "--db", db,
                   cwd=tmp_path)  # fmt: skip
    assert r"Pay\x1b[2J\x1b[H\u202egnp.exe\u202c" in user.stdout, user.stdout


def test_no_report_file_holds_a_control_character_and_markdown_renders_inert(
    pulled: tuple[Path, list[Run]], tmp_path: Path
) -> None:
    db, _ = pulled
    run = run_cli("audit", "--offline", "--format", "csv,json,md,xlsx", "--out", tmp_path,
                  "--db", db, cwd=tmp_path)  # fmt: skip
    assert run.returncode in (0, 1), run.stderr
    texts = {path: path.read_text(encoding="utf-8") for path in tmp_path.rglob("*.csv")}
    texts |= {path: path.read_text(encoding="utf-8") for path in tmp_path.glob("*.json")}
    markdown = next(tmp_path.glob("*.md"))
    texts[markdown] = markdown.read_text(encoding="utf-8")
    for path, text in texts.items():
        lines = text.replace("\r\n", "\n")  # csv ends its lines in CRLF (RFC 4180)
        found = UNSAFE.search(lines)
        assert found is None, f"{path.name} holds {found.group()!r}"
    # The names are in the files, escaped: a csv reader and a json parser read them back.
    keys = next(tmp_path.rglob("findings.csv"))
    with keys.open(encoding="utf-8", newline="") as handle:
        subjects = {row["Subject"] for row in csv.DictReader(handle)}
    assert any(r"\x1b]8;;https://evil.example/" in subject for subject in subjects), subjects
    report = json.loads(next(tmp_path.glob("*.json")).read_text(encoding="utf-8"))
    assert r"\u202egnp.exe" in json.dumps(report)  # escaped text, parsed back as such
    html = MarkdownIt("commonmark").enable("table").render(texts[markdown])
    made = re.findall(r"<(?!/?(?:table|thead|tbody|tr|th|td|code|h1|h2|p)\b)[^>]*>", html)
    assert made == [], made  # no element but the report's own: no script, image or link
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown, as text
    workbook = openpyxl.load_workbook(next(tmp_path.glob("*.xlsx")), read_only=True)
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows(values_only=True):
            for value in row:
                if isinstance(value, str):
                    assert UNSAFE.search(value) is None, (sheet.title, value)


def test_a_hostile_server_error_message_is_one_inert_line(tmp_path: Path) -> None:
    org, _ = _org()
    with Simulator(org, admin_key=ADMIN_KEY) as sim:
        sim.add_fault(
            Fault("status", path="/organization/users$", status=400, times=-1,
                  message=f"bad request{OSC_52}{FORGED}{BIDI}")
        )  # fmt: skip
        run = run_cli("pull", "--base-url", sim.base_url, "--db", tmp_path / "db",
                      cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY)  # fmt: skip
    assert run.returncode == 3, run
    _assert_inert(run, "pull refused")
    [line] = run.stderr.strip().splitlines()
    assert r"bad request\x1b]52;c;cm0gLXJmIH4=\x07ok orgaudit: all clear" in line, line


def test_output_into_a_path_that_cannot_be_a_folder_is_exit_3(
    pulled: tuple[Path, list[Run]], tmp_path: Path
) -> None:
    db, _ = pulled
    (tmp_path / "a-file").write_text("")
    run = run_cli("audit", "--offline", "--format", "csv", "--out", tmp_path / "a-file" / "out",
                  "--db", db, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 3, run
    assert "cannot create the folder" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
