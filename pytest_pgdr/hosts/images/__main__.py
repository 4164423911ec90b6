"""``python -m pytest_pgdr.hosts.images``."""

import sys

from pytest_pgdr.hosts.images.cli import main

if __name__ == "__main__":
    sys.exit(main())
