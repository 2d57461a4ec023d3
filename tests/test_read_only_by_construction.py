"""Read-only, proven twice: no code path can build a request with a method other than GET.

The transport guard refuses any other method at run time (tests/test_client.py); this
test reads the source, so a new ``post(``, ``request("DELETE", ...)`` or
``method=...`` anywhere in the package fails CI before it can run.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "orgaudit"
WRITE_METHODS = {"post", "put", "patch", "delete", "head", "options"}


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def test_only_the_client_imports_httpx() -> None:
    importers = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name.split(".")[0] == "httpx" for name in names):
                importers.append(path.relative_to(PACKAGE).as_posix())
    assert sorted(set(importers)) == ["collect/client.py"]


def _non_get_requests(source: str) -> list[str]:
    """Every call in ``source`` that could send a method other than GET."""
    offending = []
    for call in _calls(ast.parse(source)):
        function = call.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        if name.lower() in WRITE_METHODS:
            offending.append(f"line {call.lineno}: .{name}(")
        if name in ("request", "stream", "build_request") and call.args:
            method = call.args[0]
            if not (isinstance(method, ast.Constant) and method.value == "GET"):
                offending.append(f"line {call.lineno}: {name}() with a method that is not 'GET'")
        for keyword in call.keywords:
            if keyword.arg == "method" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value == "GET"
            ):
                offending.append(f"line {call.lineno}: method= that is not 'GET'")
    return offending


def test_the_client_builds_no_request_but_get() -> None:
    assert _non_get_requests((PACKAGE / "collect" / "client.py").read_text(encoding="utf-8")) == []


def test_the_scan_would_notice_a_write() -> None:
    # The scan must not be vacuous: it flags a write written each way httpx allows.
    source = (
        'client.post("/x")\n'
        'client.request("DELETE", "/x")\n'
        'client.stream("GET", "/x")\n'
        'client.build_request(method="PUT", url="/x")\n'
    )
    assert _non_get_requests(source) == [
        "line 1: .post(",
        "line 2: request() with a method that is not 'GET'",
        "line 4: method= that is not 'GET'",
    ]
