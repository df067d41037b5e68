"""Measure what a container has written to its writable host directories, never following links."""

from __future__ import annotations

import os
from dataclasses import dataclass

from limits.sizes import format_size


@dataclass(frozen=True)
class OutputUsage:
    bytes: int
    files: int

    def exceeds(self, max_bytes: int, max_files: int) -> str | None:
        """A message when a limit is passed, else None."""
        if self.bytes > max_bytes:
            return f"wrote {format_size(self.bytes)}, over the disk limit of {format_size(max_bytes)}"
        if self.files > max_files:
            return f"created more than {max_files} files and directories, the limit"
        return None


def measure(paths: tuple[str, ...] | list[str], stop_after_files: int | None = None) -> OutputUsage:
    """Disk blocks in use and entries under ``paths``; stops counting past ``stop_after_files``."""
    total = files = 0
    stack = list(paths)
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                files += 1
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += st.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                if stop_after_files is not None and files > stop_after_files:
                    return OutputUsage(total, files)
    return OutputUsage(total, files)
