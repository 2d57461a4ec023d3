"""Fixtures: the simulator serving the demo org on loopback, the test key, a database path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orgaudit.settings import AdminKey
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.org import SimOrg

from support import ADMIN_KEY, NOW


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        help="rewrite the expected files under tests/golden from the current output",
    )


@pytest.fixture
def regen_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--regen-golden"))


@pytest.fixture
def admin_key() -> AdminKey:
    return AdminKey(ADMIN_KEY)


@pytest.fixture
def demo() -> SimOrg:
    return demo_org(NOW)


@pytest.fixture
def simulator(demo: SimOrg) -> Iterator[Simulator]:
    """The demo org served on a free loopback port."""
    with Simulator(demo, admin_key=ADMIN_KEY) as sim:
        yield sim


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "snapshots.db"
