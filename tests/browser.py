"""The one rule of every browser test: which Chromium it drives, and when a missing one skips it.

scripts/setup.sh installs Debian's ``chromium`` as root where ``apt-get`` is, unless a ``chromium``
is on PATH already; the tests take the same ``chromium`` from PATH. Where setup installs it (root,
apt-get), a missing chromium fails the test: it would have been set up, so its absence is a broken
setup, never a reason to skip. Elsewhere (no root, or no apt-get) the test is skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def setup_installs_chromium() -> bool:
    """Whether scripts/setup.sh installs chromium on this machine (``setup_browser``)."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def chromium_path() -> str:
    """The ``chromium`` on PATH; fails the test where setup installs it, skips it elsewhere."""
    found = shutil.which("chromium")
    if found:
        return found
    if setup_installs_chromium():
        pytest.fail(
            "chromium is not on PATH, though scripts/setup.sh installs Debian's chromium here (root, apt-get): run scripts/setup.sh"
        )
    pytest.skip("chromium is not on PATH and scripts/setup.sh installs it only as root where apt-get is: apt-get install chromium")


@contextmanager
def launched_chromium() -> Iterator:
    """A headless Chromium driven by Playwright (``chromium_path``'s rule), closed at the end."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()
