"""``python -m pytest_pgdr.images build``: the local Docker images (see hosts.images)."""

from pytest_pgdr.hosts.images import *  # noqa: F403
from pytest_pgdr.hosts.images import __all__, main  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
