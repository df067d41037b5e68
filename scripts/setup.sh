#!/usr/bin/env bash
# Set up everything harness needs, idempotently: Python (3.11, 3.12 or 3.13) and a virtual
# environment installed from the lock scripts/requirements.lock, and a Docker engine that answers. As root on a fresh
# Debian machine it installs what is missing (python3, docker.io, mmdebstrap, docker-registry,
# chromium, runsc) and starts the engine, with gVisor registered as its runtime "runsc"; on a
# workstation that already has Docker it only creates the virtual environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HARNESS_VENV:-$ROOT/.venv}"
LOCK="${HARNESS_ENV_LOCK:-$ROOT/scripts/requirements.lock}"
DOCKERD_LOG="${HARNESS_DOCKERD_LOG:-/var/log/harness-dockerd.log}"

say() { printf 'setup: %s\n' "$*" >&2; }
is_root() { [ "$(id -u)" -eq 0 ]; }

apt_install() {
    if ! is_root; then
        say "missing: $*; install it (apt-get install -y $*) or re-run as root"
        exit 1
    fi
    if [ -z "${_APT_UPDATED:-}" ]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        _APT_UPDATED=1
    fi
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# A Python the project supports (pyproject: >=3.11,<3.14) that can make virtual environments
# (Debian splits ensurepip into python3-venv). python3 first: on Debian and Ubuntu it is the
# system's own (Debian 12: 3.11, Debian 13: 3.13, Ubuntu 24.04: 3.12).
IN_RANGE='import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))'

python_in_range() {
    "$1" -c "$IN_RANGE" >/dev/null 2>&1
}

python_supported() {
    python_in_range "$1" && "$1" -c 'import venv, ensurepip' >/dev/null 2>&1
}

find_python() {
    for candidate in python3 python3.11 python3.12 python3.13; do
        if command -v "$candidate" >/dev/null 2>&1 && python_supported "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# The environment is the lock (scripts/lock.sh writes it): every package pinned with its files'
# sha256, installed by pip in hash-checking mode, then the project itself without resolving anything.
# A changed lock makes a new environment, so nothing the lock dropped stays behind; a pyproject.toml
# changed alone (the project's own metadata: entry points, packages, tool options) reinstalls the
# project into the environment it has.
setup_python() {
    local python
    if ! python="$(find_python)"; then
        apt_install python3 python3-venv python3-pip
        python="$(find_python)" || { say "Python 3.11, 3.12 or 3.13 with venv is required"; exit 1; }
    fi
    [ -f "$LOCK" ] || { say "the environment lock $LOCK is missing: write it with scripts/lock.sh"; exit 1; }
    local stamp="$VENV/.harness-installed" project_stamp="$VENV/.harness-project"
    local want had project
    want="$(sha256sum <"$LOCK" | cut -d' ' -f1)"
    had="$(cat "$stamp" 2>/dev/null || true)"
    project="$(sha256sum <"$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ -x "$VENV/bin/python" ] && python_in_range "$VENV/bin/python" && [ "$had" = "$want" ]; then
        if [ "$(cat "$project_stamp" 2>/dev/null || true)" != "$project" ]; then
            "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT"
            echo "$project" >"$project_stamp"
        fi
        return 0
    fi
    local version
    version="$("$python" -c 'import sys; print("Python %d.%d" % sys.version_info[:2])')"
    if [ -x "$VENV/bin/python" ] && [ -n "$had" ]; then
        say "the environment lock $LOCK changed since $VENV was installed: reinstalling it with $version ($python)"
    else
        say "creating $VENV with $version ($python) from the lock $LOCK (first time: a few minutes)"
    fi
    rm -f "$stamp"
    "$python" -m venv --clear "$VENV"
    if ! "$VENV/bin/python" -m pip install -q --require-hashes -r "$LOCK"; then
        say "installing the locked environment $LOCK failed (above); a package the index no longer serves or a hash that differs needs a new lock: scripts/lock.sh"
        exit 1
    fi
    "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT"
    echo "$want" >"$stamp"
    echo "$project" >"$project_stamp"
    say "installed $(grep -c '==' "$LOCK") locked packages and harness into $VENV"
}

docker_answers() {
    "$VENV/bin/python" -c 'import docker; docker.from_env().ping()' >/dev/null 2>&1
}

setup_docker() {
    if docker_answers; then
        return 0
    fi
    if ! is_root; then
        say "no Docker engine answers. Start yours (or add yourself to the docker group), or run this as root to install one"
        exit 1
    fi
    command -v dockerd >/dev/null 2>&1 || apt_install docker.io
    # A package install may have started the engine through systemd already.
    for _ in 1 2 3; do docker_answers && return 0; sleep 1; done
    say "starting dockerd (no bridge network: evaluation containers run without a network); log: $DOCKERD_LOG"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    setsid nohup dockerd --bridge=none --iptables=false >>"$DOCKERD_LOG" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        docker_answers && return 0
        sleep 1
    done
    say "dockerd did not answer within 60 s; see $DOCKERD_LOG"
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    exit 1
}

setup_image_tools() {
    # Without a registry the participant base image is bootstrapped from Debian packages.
    if is_root && ! command -v mmdebstrap >/dev/null 2>&1; then
        apt_install mmdebstrap
    fi
}

setup_registry() {
    # Participants push images to a real OCI registry (the CNCF distribution registry, Debian's
    # docker-registry) that `harness serve` starts with its own configuration. The package's own
    # system service (an open registry on :5000) is not ours: it is stopped where systemd runs it.
    if ! command -v docker-registry >/dev/null 2>&1 && is_root; then
        apt_install docker-registry
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
            systemctl disable --now docker-registry >/dev/null 2>&1 || true
        fi
    fi
}

setup_browser() {
    # The leaderboard page is tested in a real headless Chromium (Debian's package).
    if is_root && ! command -v chromium >/dev/null 2>&1; then
        apt_install chromium
    fi
}

engine_has_runsc() {
    "$VENV/bin/python" -c 'import docker, sys; sys.exit("runsc" not in (docker.from_env().info().get("Runtimes") or {}))' >/dev/null 2>&1
}

setup_sandbox() {
    # gVisor (`runner.runtime=runsc`): Debian packages it as runsc (bookworm: 0.0~20221219). As root
    # where apt knows the package it is installed and registered with the engine as "runsc" in
    # /etc/docker/daemon.json (merged into what is there); an engine that is running already
    # re-reads its runtimes on SIGHUP, so no running container is disturbed.
    is_root || return 0
    if ! command -v runsc >/dev/null 2>&1; then
        command -v apt-cache >/dev/null 2>&1 || return 0
        if [ -z "$(apt-cache policy runsc 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}')" ]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && _APT_UPDATED=1
        fi
        if [ -z "$(apt-cache policy runsc 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}')" ]; then
            say "gVisor (runsc) is not packaged for this system; runner.runtime=runsc stays unavailable"
            return 0
        fi
        apt_install runsc
    fi
    engine_has_runsc && return 0
    local runsc config=/etc/docker/daemon.json
    runsc="$(command -v runsc)"
    mkdir -p /etc/docker
    "$VENV/bin/python" - "$config" "$runsc" <<'EOF'
import json, os, sys
path, runsc = sys.argv[1], sys.argv[2]
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
# gVisor's own network stack refuses the network namespace Docker's "none" gives a container
# ("cannot run with network enabled in root network namespace"); evaluation has no network anyway
config.setdefault("runtimes", {})["runsc"] = {"path": runsc, "runtimeArgs": ["--network=none"]}
with open(path + ".tmp", "w") as fh:
    json.dump(config, fh, indent=2)
    fh.write("\n")
os.replace(path + ".tmp", path)
EOF
    local pid
    pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
        say "registering gVisor (runsc) with the running engine (pid $pid): $config, then SIGHUP"
        kill -HUP "$pid"
    fi
    for _ in $(seq 1 20); do
        engine_has_runsc && return 0
        sleep 0.5
    done
    say "the engine does not list runsc after reloading $config; see $DOCKERD_LOG"
    exit 1
}

# `setup.sh` does every step; `setup.sh python` (or any list of steps) only those.
ALL_STEPS="python docker image_tools registry browser sandbox"
for step in "$@"; do
    case " $ALL_STEPS " in
        *" $step "*) ;;
        *) say "unknown step $step: the steps are $ALL_STEPS"; exit 2 ;;
    esac
done
for step in ${*:-$ALL_STEPS}; do
    "setup_$step"
done
[ $# -gt 0 ] || say "ready: $VENV/bin/harness, Docker engine answering"
