"""The participant kit from the service: a gzip'd tar, unpacked where the participant said.

The archive comes from the network, so it is unpacked with tarfile's ``data`` filter (no absolute
paths, no ``..``, no links out of the folder, no devices) into a folder beside the target, which
takes the target's place only once everything is there: a failed pull leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from harness.client.api import ServiceClient
from harness.util.errors import HarnessError


def pull_kit(client: ServiceClient, competition: str, output: Path) -> Path:
    """Download ``competition``'s kit and unpack it into ``output`` (absent or empty); returns its path."""
    output = Path(output).resolve()
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise HarnessError(f"--output {output}: not an empty folder; name a new one")
    if not output.parent.is_dir():
        raise HarnessError(f"--output {output}: the folder {output.parent} does not exist; create it first")
    if not hasattr(tarfile, "data_filter"):
        raise HarnessError("unpacking a kit safely needs Python 3.11.4 or later (tarfile's data filter)")
    try:
        staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}."))
    except OSError as exc:
        raise HarnessError(f"cannot write in {output.parent}: {exc.strerror or exc}") from None
    try:
        archive = staging / "kit.tar.gz"
        with open(archive, "wb") as fh:
            for chunk in client.kit(competition):
                fh.write(chunk)
        unpacked = staging / "kit"
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(unpacked, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise HarnessError(f"the kit from {client.server} is not a readable archive ({exc}); try again or tell the organizer") from None
        if output.exists():
            output.rmdir()
        os.replace(_kit_folder(unpacked), output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def _kit_folder(unpacked: Path) -> Path:
    """Where ``kit.json`` is: the archive's top, or its one top-level folder (``digits-kit/``, as the
    service packs it, so that a participant who untars it by hand gets one folder)."""
    entries = list(unpacked.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / "kit.json").is_file():
        return entries[0]
    return unpacked
