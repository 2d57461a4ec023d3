"""A loopback stand-in for the Admin API: the one the tests, the demo and the benchmark use."""

from orgaudit.simulator.org import OrgBuilder, SimOrg
from orgaudit.simulator.server import Fault, Simulator

__all__ = ["Fault", "OrgBuilder", "SimOrg", "Simulator"]
