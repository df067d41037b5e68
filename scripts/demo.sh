#!/usr/bin/env bash
# The main job, end to end on the bundled example: set up, build the images, prepare the digits
# data, submit the sample submission, run a round on Ray, print the leaderboard.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "${HARNESS_VENV:-$ROOT/.venv}/bin/harness" demo "$@"
