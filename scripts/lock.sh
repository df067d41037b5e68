#!/usr/bin/env bash
# Refresh scripts/requirements.lock, the locked environment scripts/setup.sh installs (the
# organizer's and the test extras, and the build backend, with every file's sha256). It is the one
# deliberate way to move the harness's own dependencies: review `git diff scripts/requirements.lock`
# and commit it; the next scripts/setup.sh reinstalls and says so. uv resolves it universally (one
# lock for Python 3.11 to 3.13 on every platform, environment markers where they differ); pip
# installs from it, so installing needs no uv. Extra arguments go to `uv pip compile`
# (`--upgrade-package ray`, `--exclude-newer 2026-12-01`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HARNESS_VENV:-$ROOT/.venv}"
[ -x "$VENV/bin/uv" ] || "$ROOT/scripts/setup.sh" python
cd "$ROOT"
# The build backend goes in too: setup.sh installs the project without build isolation, from the lock alone.
"$VENV/bin/python" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' |
    "$VENV/bin/uv" pip compile pyproject.toml - --extra organizer --extra test --universal --python-version 3.11 \
        --generate-hashes --custom-compile-command "scripts/lock.sh" --quiet -o scripts/requirements.lock "$@"
echo "lock.sh: wrote scripts/requirements.lock ($(grep -c '==' scripts/requirements.lock) packages); review it with git diff, commit it, then scripts/setup.sh reinstalls" >&2
