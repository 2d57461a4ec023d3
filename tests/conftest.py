"""Fixtures: the simulator serving the demo org on loopback, the test key, a database path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from orgaudit.settings import AdminKey
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.org import SimOrg

from support import ADMIN_KEY, NOW, Audited, demo_audited, hostile_audited

# Property tests run a fixed, reproducible sequence of examples in the suite (CI must not
# turn red at random); `pytest --hypothesis-profile=explore` searches further, at random.
# No deadline: an example that goes through HTTP and SQLite takes what it takes.
settings.register_profile(
    "suite",
    max_examples=50,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "explore",
    max_examples=500,
    derandomize=False,
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("suite")


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


@pytest.fixture(scope="module")
def demo_audit(tmp_path_factory: pytest.TempPathFactory) -> Audited:
    """The demo org pulled at a fixed time and audited into every format (one per module)."""
    return demo_audited(tmp_path_factory.mktemp("demo-audit"))


@pytest.fixture(scope="module")
def hostile_audit(tmp_path_factory: pytest.TempPathFactory) -> Audited:
    """An org whose user, project and key names are spreadsheet formulas."""
    return hostile_audited(tmp_path_factory.mktemp("hostile-audit"))


if TYPE_CHECKING:
    from tests.test_review import Story


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    """An access-review campaign's story on the demo org (tests/test_review.py), told once."""
    from tests.test_review import tell_story

    return tell_story(tmp_path_factory)
