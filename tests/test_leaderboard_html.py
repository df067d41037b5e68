"""The leaderboard page: static, escaped, and rendered right by a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.cli import main
from tests.browser import chromium_path, setup_installs_chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SCRIPT_TEAM = "<script>alert(1)</script>"
IMG_TEAM = '<img src=x onerror="document.body.dataset.pwned=1">'
TEAMS = [  # (team, [(day, public score, verdict)])
    (SCRIPT_TEAM, [(1, 0.81, "SCORED"), (2, 0.88, "SCORED"), (4, 0.93, "SCORED")]),
    ("Gradient Descenders", [(1, 0.86, "SCORED"), (3, None, "TIMEOUT"), (5, 0.95, "SCORED")]),
    (IMG_TEAM, [(2, 0.74, "SCORED"), (3, 0.90, "SCORED")]),
    ("Ünïcode & <Friends>", [(1, None, "RUNTIME_ERROR"), (2, None, "INVALID_PREDICTIONS")]),
]
EXPECTED = [("1", "Gradient Descenders"), ("2", SCRIPT_TEAM), ("3", IMG_TEAM), ("–", "Ünïcode & <Friends>")]


@pytest.fixture
def page(home) -> Path:
    from test_record import make_record

    from harness.submissions.ledger import EVALUATED, Ledger

    records, ledger = home / "competitions" / "digits" / "records", Ledger(home, "digits")
    records.mkdir(parents=True, exist_ok=True)
    for t, (team, attempts) in enumerate(TEAMS):
        for n, (day, score, verdict) in enumerate(attempts):
            submission = ledger.add(team, "img", "sha256:" + "0" * 64)
            submission.state, submission.evaluations = EVALUATED, [f"ev-{t}{n}"]
            ledger.save(submission)
            record = make_record(
                f"ev-{t}{n}",
                submission.id,
                team,
                verdict,
                {"public": {"accuracy": score}, "private": {"accuracy": score}} if score else {},
                submitted_at=f"2026-01-0{day}T{8 + t:02d}:00:00.000Z",
                message="" if score else f"{verdict} <b>details</b>",
            )
            (records / f"ev-{t}{n}.json").write_text(json.dumps(record))
    out = home / "leaderboard.html"
    assert main(["leaderboard", "digits", "--format", "html", "--output", str(out)]) == 0
    return out


class Cells(HTMLParser):
    """The text of every table row (header cells in ``headers``), and every element name, of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.headers: list[str] = []
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += attrs
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            (self.rows[-1] if tag == "td" else self.headers).append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Cells:
    cells = Cells()
    cells.feed(html)
    return cells


def test_page_is_static_and_escapes_participant_text(page):
    html = page.read_text()
    assert "<script" not in html.lower() and "http://" not in html and "https://" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Content-Security-Policy" in html and "<svg" in html and "<polyline" in html
    doc = parse(html)
    assert "script" not in doc.tags and "img" not in doc.tags
    assert not any(name.startswith("on") for name, _ in doc.attrs)
    ranked = [(row[0], row[1]) for row in doc.rows if row]
    assert ranked == EXPECTED


def run_chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / "chromium-profile"
    argv = [
        chromium_path(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_chromium_renders_ranks_and_shows_script_names_as_text(page, tmp_path):
    dom = run_chromium(tmp_path, "--virtual-time-budget=2000", "--dump-dom", page.as_uri())
    doc = parse(dom)
    assert [(row[0], row[1]) for row in doc.rows if row] == EXPECTED  # the names are text in their cells
    assert "script" not in doc.tags and "img" not in doc.tags  # nothing participant-supplied became an element
    assert "data-pwned" not in dom
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "leaderboard.png"
    shot.unlink(missing_ok=True)
    run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1100,1300", "--hide-scrollbars", page.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


@pytest.mark.parametrize(
    ("root", "on_path", "outcome"),
    [
        (True, ["apt-get"], "fail"),  # where scripts/setup.sh installs chromium, its absence is a broken setup
        (True, [], "skip"),  # root without apt-get: setup cannot install it
        (False, ["apt-get"], "skip"),  # not root: setup does not install it
        (True, ["apt-get", "chromium"], "run"),
        (False, ["chromium"], "run"),
    ],
)
def test_the_browser_rule_never_skips_where_setup_installs_chromium(monkeypatch, tmp_path, root, on_path, outcome):
    """tests/browser.py, the rule of every browser test, on a PATH holding only ``on_path``."""
    for name in on_path:
        (tmp_path / name).symlink_to(shutil.which(name) or "/bin/true")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 0 if root else 1000)
    assert setup_installs_chromium() == (root and "apt-get" in on_path)
    try:  # a skip here must not skip this test: each outcome is caught and compared
        found, said = "run", chromium_path()
    except pytest.fail.Exception as exc:
        found, said = "fail", str(exc)
    except pytest.skip.Exception as exc:
        found, said = "skip", str(exc)
    assert found == outcome, said
    if outcome == "fail":
        assert "scripts/setup.sh installs Debian's chromium here" in said
    elif outcome == "skip":
        assert "apt-get install chromium" in said
    else:
        assert said == str(tmp_path / "chromium")
