"""Each rule has one owner, read from the source with ``ast`` (a deliberate regression fails here):

- a verdict is spelled only by its enum (``harness.limits.verdicts``): nowhere else is ``"SCORED"``,
  ``"OK"``, ``"INFRA_ERROR"``… a bare string;
- a submission's state is written only by the ledger (``start``, ``finish``, ``requeue``,
  ``moderate``): nowhere else is a ``.state`` assigned or the submissions table updated;
- which records stand, the scored submissions, the public/private rule and the boards are the
  results room's (``harness.results``): nowhere else are records loaded with the ledger's listing or
  boards, histories and scored sets built from them."""

from __future__ import annotations

import ast
from pathlib import Path

from harness.limits import PhaseVerdict, Verdict

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "harness", ROOT / "runner", ROOT / "limits"]
VERDICTS = {v.value for v in Verdict} | {v.value for v in PhaseVerdict}
LEDGER = ROOT / "harness" / "submissions" / "ledger.py"
RESULTS = ROOT / "harness" / "results"
BOARD_BUILDERS = {"build", "history", "latest_per_submission", "final_candidates"}


def sources():
    for folder in SOURCES:
        for path in sorted(folder.rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


def test_verdicts_are_spelled_only_by_their_enum():
    bare = [
        where(path, node)
        for path, tree in sources()
        if path != ROOT / "limits" / "verdicts.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in VERDICTS
    ]
    assert not bare, f"compare with harness.limits.Verdict or PhaseVerdict, not a bare string: {bare}"


def test_only_the_ledger_writes_a_submission_state():
    writes = []
    for path, tree in sources():
        if path == LEDGER:
            continue
        for node in ast.walk(tree):
            targets = (
                node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            )
            flat = [t for target in targets for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
            writes += [where(path, node) for t in flat if isinstance(t, ast.Attribute) and t.attr == "state"]
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "UPDATE submissions" in node.value:
                writes.append(where(path, node))
    assert not writes, f"a submission's state changes through the ledger (start, finish, requeue, moderate): {writes}"


def test_the_results_room_alone_decides_which_results_stand():
    others = []
    for path, tree in sources():
        if RESULTS in path.parents or path.parent.name == "leaderboard":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness.leaderboard"):
                others += [f"{where(path, node)} imports {a.name}" for a in node.names if a.name in BOARD_BUILDERS]
            if isinstance(node, ast.Call) and any(k.arg == "listed" for k in node.keywords):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name == "load_records":
                    others.append(f"{where(path, node)} loads the listed records")
            if isinstance(node, ast.Attribute) and node.attr in BOARD_BUILDERS and getattr(node.value, "id", "") == "leaderboard":
                others.append(f"{where(path, node)} calls leaderboard.{node.attr}")
    assert not others, f"ask harness.results.Results (records, scored, part, board, history): {others}"
