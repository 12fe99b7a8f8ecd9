#!/usr/bin/env bash
# Installs PyPI's chdb-core (ClickHouse 26.9 embedded in Python, no server) for the analytics
# compatibility suite (projections/analytics, internal/chdb) unless python3 already imports that
# version. ORDERSTREAM_CHDB_PYTHON picks another interpreter (the tests read the same variable).
set -euo pipefail
VERSION=26.9.0
PY=${ORDERSTREAM_CHDB_PYTHON:-python3}
if "$PY" -c "import sys, chdb; sys.exit(chdb.__version__ != '$VERSION')" 2>/dev/null; then
  exit 0
fi
echo "installing chdb-core $VERSION (PyPI) for the ClickHouse compatibility suite ..."
"$PY" -m pip install -q --disable-pip-version-check "chdb-core==$VERSION"
"$PY" -c "import chdb"
