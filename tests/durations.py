"""Seconds per test file, for the order the suite hands files to its workers (tests/conftest.py).

Regenerate after a file's time changes much: run the suite with ``--junitxml=run.xml`` on an idle
machine, then ``python tests/durations.py run.xml`` rewrites tests/durations.json."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

DURATIONS = Path(__file__).resolve().parent / "durations.json"


def read(path: Path = DURATIONS) -> dict[str, float]:
    return json.loads(path.read_text()) if path.is_file() else {}


def from_junit(junit: Path) -> dict[str, int]:
    """Each file's seconds (setup, call and teardown of its tests), longest first."""
    seconds: Counter[str] = Counter()
    for case in ET.parse(junit).iter("testcase"):
        module = case.get("classname", "").split(".")
        if len(module) > 1 and module[0] == "tests":
            seconds[f"tests/{module[1]}.py"] += float(case.get("time") or 0)
    return {name: max(1, round(s)) for name, s in seconds.most_common()}


if __name__ == "__main__":
    DURATIONS.write_text(json.dumps(from_junit(Path(sys.argv[1])), indent=0) + "\n")
