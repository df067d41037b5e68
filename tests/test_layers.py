"""The packages are floors: each imports only from floors below it (and from itself), never up;
and some rooms may never talk at all, whatever their floors (``NEVER``): the service, the command
line and the submissions room never import the runner's internals (only ``harness.runner``'s
public names), and the organizer's side reaches the container engine's SDK (``docker``) only
through the runner; besides it, only the participant's side (building and pushing images) imports it.

Read from the source with ``ast``, function-level imports included, so a lazy import cannot hide
a dependency that runs the wrong way. ``docs/architecture.md`` states the same rules."""

import ast
from collections.abc import Iterable
from pathlib import Path

import harness.runner

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


# Who may never talk: the rooms that must not import the runner's modules, and the only rooms that
# may import the docker SDK. Each rule's sentence is in docs/architecture.md, word for word.
RUNNER_PUBLIC = frozenset(harness.runner.__all__)
NO_RUNNER_INTERNALS = ("harness.service", "harness.cli", "harness.submissions")
DOCKER_ROOMS = ("harness.runner", "harness.participant", "harness.client")
NEVER = (
    "The service, the command line and the submissions room never import a module of the runner: only the public names of `harness.runner`.",
    "Only the runner and the participant's side (`harness.participant`, `harness.client`) import the `docker` SDK; the organizer's side reaches the engine through a `Backend`.",
)


def package_of(module: str) -> str | None:
    return next((p for p in sorted(FLOORS, key=len, reverse=True) if module == p or module.startswith(p + ".")), None)


def modules():
    for package in FLOORS:
        folder = FOLDERS.get(package, ROOT / package.replace(".", "/"))
        for path in folder.rglob("*.py"):
            yield package, path


def all_imported(path: Path) -> set[str]:
    """Every module a file imports, and ``module.name`` for each name it takes from one."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imported(path: Path) -> set[str]:
    return {name for name in all_imported(path) if name.split(".")[0] in ("harness", "limits", "runner")}


def never_talk(package: str, names: Iterable[str]) -> list[str]:
    """What of ``names`` (imported by a module of ``package``) breaks a rule of ``NEVER``, in words."""
    broken = []
    for name in sorted(names):
        inside = name.removeprefix("harness.runner.").split(".")[0]
        if package in NO_RUNNER_INTERNALS and name.startswith("harness.runner.") and inside not in RUNNER_PUBLIC:
            broken.append(f"{name}: {package} never imports the runner's internals; import a public name of harness.runner")
        if (name == "docker" or name.startswith("docker.")) and package not in DOCKER_ROOMS:
            broken.append(f"{name}: {package} is the organizer's side, which reaches docker only through harness.runner (a Backend)")
    return broken


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


def test_rooms_that_may_never_talk_do_not():
    broken = [f"{path.relative_to(ROOT)} imports {why}" for package, path in modules() for why in never_talk(package, all_imported(path))]
    assert not broken, "\n".join(broken)


def test_a_forbidden_import_is_caught():
    # the runner's internals, however they are named
    assert never_talk("harness.service", {"harness.runner.logs", "harness.runner.logs.parse_cursor"})
    assert never_talk("harness.cli", {"harness.runner", "harness.runner.ray_pool"})
    assert never_talk("harness.submissions", {"harness.runner", "harness.runner.image_faults"})
    # docker on the organizer's side, the limits included
    assert never_talk("harness.rounds", {"docker"})
    assert never_talk("harness.limits", {"docker.types", "docker.types.Ulimit"})
    assert never_talk("harness.service", {"docker.errors"})
    # what is allowed
    assert not never_talk("harness.service", {"harness.runner", "harness.runner.create_backend", "harness.runner.EngineError"})
    assert not never_talk("harness.rounds", {"harness.runner.ray_pool"})  # the rounds drive the runner: not one of the three rooms
    assert not never_talk("harness.client", {"docker", "docker.errors"})
    assert not never_talk("harness.participant", {"docker"})
    assert not never_talk("harness.runner", {"docker.types.Mount"})


def test_a_forbidden_import_in_a_file_fails_the_rule(tmp_path):
    source = tmp_path / "views.py"
    source.write_text("def f():\n    from harness.runner.logs import parse_cursor\n    import docker\n")
    assert len(never_talk("harness.service", all_imported(source))) == 3  # the module, the name taken from it, docker


def test_the_architecture_page_states_the_same_rules():
    page = " ".join((ROOT / "docs" / "architecture.md").read_text().split())
    missing = [rule for rule in NEVER if rule not in page]
    assert not missing, "docs/architecture.md lacks: " + "; ".join(missing)
