"""The packages are floors: each imports only from floors below it (and from itself), never up.

Read from the source with ``ast``, function-level imports included, so a lazy import cannot hide
a dependency that runs the wrong way."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The folder of each installed package in the checkout (runner/ and limits/ install inside harness).
FOLDERS = {"harness.runner": ROOT / "runner", "harness.limits": ROOT / "limits"}
FLOORS = {
    "harness.util": 0,
    "harness.limits": 1,
    "harness.registry": 1,
    "harness.client": 1,
    "harness.runner": 2,
    "harness.scoring": 2,
    "harness.competition": 3,
    "harness.records": 4,
    "harness.submissions": 4,
    "harness.leaderboard": 4,
    "harness.evaluation": 5,
    "harness.results": 5,
    "harness.participant": 5,
    "harness.proofs": 6,
    "harness.rounds": 7,
    "harness.service": 8,
    "harness.cli": 9,
}


def package_of(module: str) -> str | None:
    return next((p for p in sorted(FLOORS, key=len, reverse=True) if module == p or module.startswith(p + ".")), None)


def modules():
    for package in FLOORS:
        folder = FOLDERS.get(package, ROOT / package.replace(".", "/"))
        for path in folder.rglob("*.py"):
            yield package, path


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] in ("harness", "limits", "runner")}


def test_every_package_has_a_floor():
    folders = {p.parent for p in (ROOT / "harness").rglob("__init__.py")} - {ROOT / "harness"}
    top = {f"harness.{f.relative_to(ROOT / 'harness').parts[0]}" for f in folders}
    assert top <= set(FLOORS), f"give these packages a floor: {sorted(top - set(FLOORS))}"


def test_no_import_runs_up_a_floor():
    upward = []
    for package, path in modules():
        for name in imported(path):
            assert not name.startswith(("limits", "runner")), f"{path}: imports {name}; write harness.{name}"
            target = package_of(name)
            if target and target != package and FLOORS[target] >= FLOORS[package]:
                upward.append(f"{path.relative_to(ROOT)} ({package}, floor {FLOORS[package]}) imports {name} (floor {FLOORS[target]})")
    assert not upward, "\n".join(upward)
