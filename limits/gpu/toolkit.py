"""The NVIDIA Container Toolkit as the Docker engine would use it: how GPUs reach a container
(the legacy hook that Docker's GPU device requests run, or CDI), and the toolkit's version.

Docker looks the hook up on *dockerd's* PATH, not the harness's: a systemd unit's PATH is the
system's default one, so both are searched. Where the engine knows CDI spec directories (Docker
25+, ``CDISpecDirs`` in ``docker info``) and one holds a spec of kind ``nvidia.com/gpu`` (written by
``nvidia-ctk cdi generate``), a node without the hook still gives GPUs, as CDI devices.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOOK = "nvidia-container-runtime-hook"  # what Docker's built-in GPU device requests run
CDI_KIND = "nvidia.com/gpu"
# The oldest toolkit whose hooks do not load an image's LD_PRELOAD as host root (CVE-2025-23266, fixed in 1.17.8).
MIN_VERSION = (1, 17, 8)
# systemd's default PATH for services (dockerd.service sets none of its own)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_VERSION = re.compile(r"\b(\d+)\.(\d+)\.(\d+)\b")
_CDI_HOOK = re.compile(r"""["']?path["']?\s*:\s*["']?(?P<path>/\S*?nvidia-(?:cdi-hook|ctk))["',\s]""")


@dataclass(frozen=True)
class Toolkit:
    mode: str | None  # "hook" (Docker's GPU device requests), "cdi" (CDI device names), None: no toolkit
    version: tuple[int, int, int] | None  # None where it cannot be told
    where: str  # what was found: the hook's path, the CDI spec's
    versioned: str = ""  # the program that told the version

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version)) if self.version else "unknown"

    def problem(self) -> str | None:
        """Why GPUs must not be given through this toolkit, or None."""
        if self.mode is None:
            return (
                f"Docker has no NVIDIA container toolkit (no {HOOK} on dockerd's PATH or the harness's, "
                f"no CDI spec of kind {CDI_KIND} in the engine's CDI directories); install the NVIDIA Container Toolkit 1.17.8 or later"
            )
        minimum = ".".join(map(str, MIN_VERSION))
        if self.version is None:
            return f"the NVIDIA Container Toolkit's version cannot be told ({self.versioned or self.where} --version); it must be {minimum} or later"
        if self.version < MIN_VERSION:
            return (
                f"the NVIDIA Container Toolkit here is {self.version_text}, older than {minimum}: its hooks load an image's "
                f"LD_PRELOAD as host root (CVE-2025-23266); upgrade it"
            )
        return None


def find_toolkit(engine_info: Mapping[str, Any], *, path: str | None = None) -> Toolkit:
    """The toolkit the engine described by ``docker info`` would use (the hook first, else CDI)."""
    search = _search_path(path)
    if hook := shutil.which(HOOK, path=search):
        return Toolkit("hook", tool_version(hook), hook, hook)
    if spec := cdi_spec(engine_info.get("CDISpecDirs") or ()):
        hook_program = _cdi_hook(spec) or shutil.which("nvidia-ctk", path=search) or ""
        return Toolkit("cdi", tool_version(hook_program) if hook_program else None, str(spec), hook_program)
    return Toolkit(None, None, "")


def _search_path(path: str | None) -> str:
    if path is not None:
        return path
    parts = [p for p in (os.environ.get("PATH", "") + ":" + SYSTEM_PATH).split(":") if p]
    return ":".join(dict.fromkeys(parts))


def cdi_spec(directories: Sequence[str] | Collection[str]) -> Path | None:
    """The first CDI spec (YAML or JSON) of kind nvidia.com/gpu in the engine's CDI directories."""
    for directory in directories:
        try:
            files = sorted(Path(directory).iterdir())
        except OSError:
            continue
        for file in files:
            if file.suffix not in (".yaml", ".yml", ".json"):
                continue
            try:
                text = file.read_text(errors="replace")
            except OSError:
                continue
            if re.search(r"""["']?kind["']?\s*:\s*["']?nvidia\.com/gpu\b""", text):
                return file
    return None


def _cdi_hook(spec: Path) -> str | None:
    try:
        found = _CDI_HOOK.search(spec.read_text(errors="replace"))
    except OSError:
        return None
    return found["path"] if found and os.access(found["path"], os.X_OK) else None


def tool_version(program: str) -> tuple[int, int, int] | None:
    """The version a toolkit program prints for ``--version`` (``NVIDIA Container Runtime Hook version 1.17.8``)."""
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    found = _VERSION.search(done.stdout + "\n" + done.stderr)
    return (int(found[1]), int(found[2]), int(found[3])) if found else None
