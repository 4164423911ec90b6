"""Public name for the fault primitives: ``from pytest_pgdr import faults`` (see drill.faults)."""

from pytest_pgdr.drill.faults import *  # noqa: F403
from pytest_pgdr.drill.faults import __all__  # noqa: F401
