#!/usr/bin/env bash
# The test suite with real Docker containers, Ray and MLflow: sets everything up first, then lints
# and checks the formatting (ruff, configured in pyproject.toml) and stops there on a finding.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
VENV="${HARNESS_VENV:-$ROOT/.venv}"
if ! "$VENV/bin/ruff" check .; then
    echo "test.sh: ruff check found problems (above); fix them, many with: $VENV/bin/ruff check --fix ." >&2
    exit 1
fi
if ! "$VENV/bin/ruff" format --check .; then
    echo "test.sh: files above are not formatted; run: $VENV/bin/ruff format ." >&2
    exit 1
fi
# The project's own bytecode, once: its packages are installed editable (not compiled by pip), so where
# PYTHONDONTWRITEBYTECODE is set every process of the suite (Ray workers, CLI and service subprocesses)
# would compile them again.
"$VENV/bin/python" -m compileall -q harness runner limits >/dev/null
exec "$VENV/bin/python" -m pytest "$@"
