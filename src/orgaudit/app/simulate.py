"""``orgaudit simulate``: serve the demo org or a generated one on loopback."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orgaudit.errors import UsageError
from orgaudit.files import private_folder, write_private_text
from orgaudit.settings import ADMIN_KEY_ENV, load_admin_key
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.generate import OrgShape, generate_org
from orgaudit.simulator.org import SimOrg

GENERATED_KEY_FILE = Path("reports") / "simulator.key"


@dataclass(frozen=True)
class SimulateOptions:
    """What to serve and how: the demo org unless ``users`` asks for a generated one."""

    port: int = 8765
    users: int | None = None
    projects: int = 10
    members_per_project: int = 5
    keys_per_project: int = 3
    service_accounts_per_project: int = 1
    groups: int = 5
    custom_roles: int = 4
    seed: int = 0
    latency: float = 0.0
    max_in_flight: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise UsageError("--port must be between 0 and 65535")
        counts = (
            self.projects,
            self.members_per_project,
            self.keys_per_project,
            self.service_accounts_per_project,
            self.groups,
            self.custom_roles,
        )
        if (self.users is not None and self.users < 0) or min(counts) < 0:
            raise UsageError("sizes of a generated org cannot be negative")
        if self.latency < 0 or (self.max_in_flight is not None and self.max_in_flight < 1):
            raise UsageError("--latency must be >= 0 and --max-in-flight >= 1")

    def build_org(self, now: int) -> SimOrg:
        """The org to serve."""
        if self.users is None:
            return demo_org(now)
        shape = OrgShape(
            users=self.users,
            projects=self.projects,
            members_per_project=self.members_per_project,
            keys_per_project=self.keys_per_project,
            service_accounts_per_project=self.service_accounts_per_project,
            groups=self.groups,
            custom_roles=self.custom_roles,
        )
        return generate_org(shape, seed=self.seed, now=now)


def serve(options: SimulateOptions, key_file: Path | None, announce: Callable[[str], None]) -> None:
    """Serve until interrupted. The key is the caller's, or a new one written to a file."""
    if key_file is None and not os.environ.get(ADMIN_KEY_ENV):
        key_file = _new_key_file()
        announce(f"a new simulator admin key was written to {key_file}")
    key = load_admin_key(key_file)
    try:
        simulator = Simulator(
            options.build_org(int(time.time())),
            admin_key=key.reveal(),
            latency=options.latency,
            max_in_flight=options.max_in_flight,
            port=options.port,
        )
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{options.port}: {exc.strerror}") from None
    hint = f" --admin-key-file {key_file}" if key_file else ""
    announce(
        f"serving the Admin API at {simulator.base_url}; try: "
        f"orgaudit pull --base-url {simulator.base_url}{hint}"
    )
    try:
        simulator.serve_forever()
    finally:
        simulator.stop()


def _new_key_file() -> Path:
    private_folder(GENERATED_KEY_FILE.parent)
    return write_private_text(GENERATED_KEY_FILE, f"sk-admin-sim-{secrets.token_hex(16)}\n")
