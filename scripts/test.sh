#!/usr/bin/env bash
# The test suite with real Docker containers, Ray and MLflow: sets everything up first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "${HARNESS_VENV:-$ROOT/.venv}/bin/python" -m pytest "$@"
