#!/usr/bin/env bash
# The main job, end to end on the bundled example, through the service: set up, build the images,
# prepare the digits data, start `harness serve digits`, push the sample submission as a team, wait
# for its verdict (evaluated on Ray), print the remote leaderboard, stop the service.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "${HARNESS_VENV:-$ROOT/.venv}/bin/harness" demo "$@"
