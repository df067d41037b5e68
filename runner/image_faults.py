"""What a submission's image causes, told apart from what the node causes.

Two jobs, both about blame:

- ``start_failure``: the engine refused to start a phase's container. When the reason lies in the
  image (its entrypoint is missing, not executable, of the wrong format, names a missing
  interpreter; its WORKDIR, /etc/passwd or a file where the contract mounts a directory), it is the
  submission's ``RUNTIME_ERROR`` with the reason in plain words and the fix. Anything else (the
  engine gone, the OCI runtime missing, the host's disk full) stays the node's ``INFRA_ERROR``.
  The patterns are runc's and dockerd's own messages (runc 1.1, Docker 20.10-28), anchored to
  the part of the message that only the container's own setup writes.
- ``image_problem`` and ``volume_mounts``: the image's own metadata must not weaken the contract.
  Intake refuses what cannot be neutralised; the backend neutralises the rest.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from docker.types import Mount as DockerMount

# Labels the harness puts on its containers and finds them by (cleanup, orphans): an image may not carry them.
RESERVED_LABEL_PREFIX = "harness."
MAX_VOLUMES = 64
# The directories the contract mounts from the host (README, "The container contract").
CONTRACT_MOUNTS = ("/data/train", "/data/test", "/model", "/output")
# Paths the engine itself mounts: a VOLUME there cannot be overlaid without breaking the container.
_ENGINE_PATHS = ("/proc", "/sys", "/dev")
# Variables that make the dynamic loader load code into every program started in the image.
LOADER_VARIABLES = frozenset({"LD_PRELOAD", "LD_AUDIT"})

# "... unable to start container process: [error during container init: ]exec: "X": REASON: unknown"
_EXEC = re.compile(
    r'unable to start container process: (?:error during container init: )?exec: "(?P<path>[^"]*)": (?P<reason>.+?)(?:: unknown)?$'
)
_MOUNT = re.compile(
    r'unable to start container process: (?:error during container init: )?error mounting "[^"]*" to rootfs at "(?P<target>[^"]+)": '
    r".*: not a directory"
)
_CHDIR = re.compile(r'chdir to cwd \("(?P<cwd>[^"]+)"\) set in config\.json failed: (?P<reason>[^:]+)')
_ACCOUNT = re.compile(r"unable to find (?:user|groups)\b.*?: (?:read|open) \S*?(?P<file>/etc/(?:passwd|group)): (?P<reason>.+)$")
# After the start (runc 1.1): the process could not be exec'd; runc prints this one line and exit code 1 follows.
_EXEC_AFTER_START = re.compile(r"exec (?P<path>\S.*): (?P<reason>no such file or directory|exec format error|permission denied)")


def start_failure(phase: str, engine_message: str, entrypoint: Sequence[str], command: Sequence[str]) -> str | None:
    """The message of a start failure the image caused, or None when the node is to blame."""
    text = " ".join(str(engine_message).split())
    if m := _EXEC.search(text):
        path, reason = m["path"], m["reason"]
        if "executable file not found in $PATH" in reason:
            if not entrypoint and command and path == command[0]:
                return _could_not_start(
                    phase,
                    f'the image has no ENTRYPOINT, so "{path}" itself was run as a program and is not one '
                    f'(the harness runs <entrypoint> {" ".join(command)}; add e.g. ENTRYPOINT ["python3", "/app/main.py"] to the Dockerfile)',
                )
            return _could_not_start(
                phase, f"the entrypoint {path} is not a program on the image's PATH (give its full path in ENTRYPOINT, or install it)"
            )
        if reason.startswith("stat ") and reason.endswith("no such file or directory"):
            return _could_not_start(
                phase, f"the entrypoint {path} is not in the image (check the path in ENTRYPOINT and the COPY that puts it there)"
            )
        if reason.startswith("stat ") and reason.endswith("permission denied"):
            return _could_not_start(
                phase,
                f"a directory on the way to the entrypoint {path} cannot be searched by the container's user, which is never root "
                "(chmod a+rx the directories in the Dockerfile)",
            )
        if reason == "permission denied":
            return _could_not_start(
                phase, f"the entrypoint {path} is not executable (chmod +x it in the Dockerfile; a directory cannot be an entrypoint)"
            )
        if reason.endswith("exec format error"):
            return _exec_format(phase, path)
        if reason.endswith("no such file or directory"):
            return _bad_interpreter(phase, path)
        return None
    if m := _MOUNT.search(text):
        return _could_not_start(
            phase, f"the image has a file at {m['target']}, where the harness mounts a directory (remove it from the image)"
        )
    if m := _CHDIR.search(text):
        return _could_not_start(phase, f"the image's WORKDIR {m['cwd']} cannot be entered ({m['reason'].strip()}); make it a directory")
    if "Cwd must be an absolute path" in text:
        return _could_not_start(phase, "the image's WORKDIR is not an absolute path (start it with /)")
    if m := re.search(r"Cannot mkdir: (?P<cwd>\S+) is not a directory", text):
        return _could_not_start(phase, f"the image's WORKDIR {m['cwd']} is a file, not a directory (point WORKDIR at a directory)")
    if m := _ACCOUNT.search(text):
        return _could_not_start(
            phase, f"the image's {m['file']} cannot be read ({m['reason'].strip()}); it must be a readable regular file"
        )
    return None


# The NVIDIA toolkit's hook refusing the container for what the image's ENV asks (nvidia-container-cli's
# requirement check of NVIDIA_REQUIRE_*, the hook's refusal of the MIG variables without privileges).
_REQUIREMENT = re.compile(r"nvidia-container-cli: requirement error: unsatisfied condition: (?P<condition>[^,]+?)(?:,|: unknown|$)")
_MIG_VARIABLE = re.compile(r"cannot set (?P<name>MIG_(?:CONFIG|MONITOR)_DEVICES) in non[- ]privileged container")


def gpu_start_failure(phase: str, engine_message: str, cuda_version: Callable[[], str | None]) -> str | None:
    """The message of a GPU container's start that the toolkit's hook refused because of the image, or None."""
    text = " ".join(str(engine_message).split())
    if m := _REQUIREMENT.search(text):
        condition = m["condition"].strip()
        supported = cuda_version()
        node = f"this node's NVIDIA driver supports CUDA up to {supported}" if supported else "this node's NVIDIA driver does not meet it"
        advice = f"build from a CUDA {supported} or older base image" if supported else "build from an older CUDA base image"
        return _could_not_start(
            phase,
            f"the image requires {condition} (its NVIDIA_REQUIRE_CUDA or NVIDIA_REQUIRE_* variables), and {node}; {advice} "
            "(see the CUDA versions the competition's GPU hosts support)",
        )
    if m := _MIG_VARIABLE.search(text):
        return _could_not_start(
            phase,
            f"the image sets NVIDIA_{m['name']}, which the NVIDIA toolkit allows only in privileged containers; remove it from its ENV",
        )
    return None


def exec_failure_after_start(phase: str, exit_code: int | None, stdout: str, stderr: str) -> str | None:
    """Runc 1.1 reports a failed exec (bad ``#!`` line, wrong binary format) after the start: the
    container prints ``exec PATH: REASON`` and exits 1. That, and nothing else, gets the start message."""
    if exit_code != 1 or stdout or not (m := _EXEC_AFTER_START.fullmatch(stderr.strip())):
        return None
    path, reason = m["path"], m["reason"]
    if reason == "exec format error":
        return _exec_format(phase, path)
    if reason == "permission denied":
        return _could_not_start(phase, f"the entrypoint {path} is not executable (chmod +x it in the Dockerfile)")
    return _bad_interpreter(phase, path)


def _could_not_start(phase: str, reason: str) -> str:
    return f"{phase} could not start: {reason}"


def _exec_format(phase: str, path: str) -> str:
    return _could_not_start(
        phase,
        f"the entrypoint {path} is not a program this host can run (exec format error): a binary built for another "
        "architecture, or a script without a #! line (rebuild it for the hosts' architecture, or start the script with e.g. #!/bin/sh)",
    )


def _bad_interpreter(phase: str, path: str) -> str:
    return _could_not_start(
        phase,
        f"the entrypoint {path} names an interpreter that is not in the image: its #! line, or a binary's dynamic loader "
        "(fix the #! line, e.g. #!/usr/bin/env python3, or install the interpreter in the image)",
    )


def _normal(path: str) -> str:
    # normpath keeps a leading "//" (POSIX leaves its meaning open): strip every leading slash first
    return posixpath.normpath("/" + path.strip().lstrip("/")) if path.strip() else ""


def _at_or_under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def image_problem(config: Mapping[str, Any] | None) -> str | None:
    """Why an image's metadata cannot be evaluated (intake's INVALID_IMAGE), or None."""
    config = config or {}
    if not config.get("Entrypoint"):
        return (
            "has no ENTRYPOINT: the harness runs <entrypoint> train and <entrypoint> infer "
            '(add e.g. ENTRYPOINT ["python3", "/app/main.py"] to the Dockerfile)'
        )
    workdir = config.get("WorkingDir") or ""
    if workdir and not workdir.startswith("/"):
        return f"has a relative WORKDIR {workdir!r}; it must be an absolute path"
    if engine_path := next((top for top in _ENGINE_PATHS if _at_or_under(_normal(workdir), top)), None):
        return (
            f"has WORKDIR {workdir}, under {engine_path}, which the container engine provides: known escapes from the container "
            "start there (CVE-2024-21626); use a directory of the image's own, e.g. WORKDIR /app"
        )
    if preloads := sorted({name for name, _, _ in (e.partition("=") for e in config.get("Env") or []) if name in LOADER_VARIABLES}):
        return (
            f"sets ENV {', '.join(preloads)}: the dynamic loader would load it into every program the engine and the GPU "
            "toolkit start, which known escapes use (CVE-2025-23266); load the library from your program instead"
        )
    if problem := volume_problem(config.get("Volumes") or {}):
        return problem
    reserved = sorted(k for k in config.get("Labels") or {} if k.startswith(RESERVED_LABEL_PREFIX))
    if reserved:
        return f"carries the label(s) {', '.join(reserved)}: labels starting {RESERVED_LABEL_PREFIX!r} are the harness's own; rename them"
    return None


def volume_problem(volumes: Iterable[str], contract_targets: Iterable[str] = CONTRACT_MOUNTS) -> str | None:
    """Why the image's VOLUMEs cannot be overlaid (``volume_mounts``), or None."""
    volumes = list(volumes)
    if len(volumes) > MAX_VOLUMES:
        return f"declares {len(volumes)} VOLUMEs, more than the {MAX_VOLUMES} the harness overlays"
    targets = [_normal(t) for t in contract_targets]
    for volume in volumes:
        path = _normal(volume)
        if path in ("", "/") or any(_at_or_under(path, top) for top in _ENGINE_PATHS):
            return f"declares VOLUME {volume}, over a path the container engine provides; remove it (or build from a base without it)"
        # a mount point inside /model or the data would be made in the host's directory, or fail in a read-only one
        if inside := next((t for t in targets if path != t and _at_or_under(path, t)), None):
            return f"declares VOLUME {volume}, inside {inside}, which the harness mounts; remove it"
    return None


def volume_mounts(volumes: Iterable[str], contract_targets: Iterable[str]) -> list[DockerMount]:
    """An empty, read-only tmpfs over each of the image's VOLUME paths, so that the engine creates no
    anonymous volume (writable, on the host's disk, outside every limit). A path the contract
    already mounts (``/tmp``, ``/model``, ...) is left to that mount, which replaces the volume."""
    taken = {_normal(t) for t in contract_targets}
    mounts = []
    for path in sorted({_normal(v) for v in volumes} - taken - {""}):
        mounts.append(DockerMount(path, None, type="tmpfs", read_only=True, tmpfs_size=4096, tmpfs_mode=0o555))
    return mounts
