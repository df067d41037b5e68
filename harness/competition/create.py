"""``harness competition new``: a competition from the organizer's own files, with no code.

From a table (CSV or Parquet) or a folder of per-item files with the table that maps each file to
its label, it works out the task (``tables.infer_task``: numbers are a value scored by RMSE, classes
a label scored by accuracy, unless told otherwise), checks the files the way the builder will
(``tables.plan``: nothing is written when they would make a broken or leaky competition), writes the
competition file into an organizer config directory with every choice visible and commented, builds
the data through the same code path every command uses (``Competition.ensure_data``: the ``tables``
or ``files`` builder reading the file just written) and runs the data checks. The same files, options
and secret write the same bytes, the competition file included.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.competition.builders import keyed
from harness.competition.builders.sources import PARQUET_SUFFIXES, TABLE_SUFFIXES, SourceError, Table, read_table
from harness.competition.builders.tables import Options, infer_task, plan
from harness.competition.config import BUNDLED_DIR, config_path, work_config_dir
from harness.competition.paths import CompetitionPaths
from harness.util.errors import HarnessError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
DEFAULT_METRICS = {"value": ("rmse", ["mae"]), "label": ("accuracy", ["macro_f1"]), "probabilities": ("log_loss", ["accuracy"])}
SAMPLE = "sample-tables"


@dataclass
class Request:
    """What the organizer asked for (the command's arguments)."""

    name: str
    source: str  # --from: a table, or a folder of files
    target: str
    test_table: str | None = None
    table: str | None = None  # files: the table that maps each file to its label (default: the folder's one table)
    file_column: str | None = None  # files: default, the one column whose every value names a file of the folder
    id_column: str | None = None
    group_column: str | None = None
    time_column: str | None = None
    drop_columns: list[str] = field(default_factory=list)
    test_fraction: float = 0.3
    public_fraction: float = 0.5
    kind: str | None = None  # default: from the target's values
    metric: str | None = None  # default: rmse for a value, accuracy for a label, log_loss for probabilities
    title: str | None = None


@dataclass
class Created:
    name: str
    config: Path
    data: Path
    data_sha256: str
    builder: str
    kind: str
    why: str
    metrics: list[str]
    rows: dict[str, int]  # train, test, public, private
    split: str
    findings: list[Any]
    next: list[str]


def new_competition(request: Request) -> Created:
    """Check, write the competition file, build the data, check it (see the module's description)."""
    from harness.competition.config import load_settings
    from harness.competition.core import Competition
    from harness.competition.datacheck import check_data

    name = _name(request.name)
    directory = target_directory()
    _not_declared_elsewhere(name, directory)
    paths = CompetitionPaths.of(name)
    if has_records(paths):
        raise HarnessError(
            f"competition {name} already has evaluation records ({paths.records}): its data stays as it is; choose another name"
        )
    competition, options, tables, folder = _compose(request, name)
    secret = keyed.the_secret(paths.root)
    planned = plan(options, tables, secret, folder)  # every refusal comes before anything is written
    config = directory / "competition" / f"{name}.yaml"
    _write(config, render(request, competition, options, tables, planned.rule))
    clear_data(paths.root)
    _keep_secret(paths.root, secret)
    built = Competition.load(load_settings(name))
    built.ensure_data()
    findings = check_data(built)
    test = [line.split(",")[-1] for line in built.paths.labels.read_text(encoding="utf-8").splitlines()[1:]]
    rows = {
        "train": sum(item.part == "train" for item in planned.items),
        "test": len(test),
        "public": test.count("public"),
        "private": test.count("private"),
    }
    spec = competition["predictions"]
    return Created(
        name=name,
        config=config,
        data=built.paths.data,
        data_sha256=built.data_sha256,
        builder=options.builder,
        kind=spec["kind"],
        why=competition["_why"],
        metrics=[competition["metrics"]["primary"], *competition["metrics"]["others"]],
        rows=rows,
        split=_split_words(options, planned.rule),
        findings=findings,
        next=next_commands(name, directory),
    )


def target_directory() -> Path:
    """Where the competition file goes: the first organizer config directory (``--config-dir``,
    ``HARNESS_CONFIG_PATH``), else the work directory's own, ``$HARNESS_HOME/config``."""
    directories = config_path()
    return directories[0] if directories else work_config_dir()


def next_commands(name: str, directory: Path) -> list[str]:
    flag = "" if directory == work_config_dir() else f" --config-dir {_shell(str(directory))}"
    return [
        f"harness{flag} kit {name} --output {name}-kit  # the participant kit: what the teams get, nothing of the test side",
        "harness images build  # once per machine: the participant base image and the sample submissions",
        f"harness{flag} serve {name}  # the service: API and pages, the registry, the evaluation loop (Ctrl-C stops it)",
        f'harness{flag} teams add {name} "Team A"  # a team and its token, shown once',
    ]


def has_records(paths: CompetitionPaths) -> bool:
    return paths.records.is_dir() and any(paths.records.iterdir())


def clear_data(root: Path) -> None:
    """Remove a competition's built data (the marker first, the secret kept) so that the next
    ``ensure_data`` builds it again: with the same secret, the same bytes."""
    root = Path(root)
    (root / keyed.MARKER).unlink(missing_ok=True)
    for name in ("data", "smoke"):
        shutil.rmtree(root / name, ignore_errors=True)
    hidden = root / "hidden"
    if hidden.is_dir():
        for path in hidden.iterdir():
            if path.name != keyed.SECRET:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def rebuild_data(competition: Any) -> None:
    """``harness data prepare NAME --rebuild``: the data built again from the organizer's files and
    the competition file as they are now; refused once evaluations were recorded on the old data."""
    if has_records(competition.paths):
        raise HarnessError(
            f"competition {competition.name} already has evaluation records ({competition.paths.records}): rebuilding its data "
            "would change what they were scored on; open a new competition instead"
        )
    clear_data(competition.paths.root)
    competition.ensure_data()


# --- the request, checked ------------------------------------------------------------------------


def _name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise HarnessError(f"competition name {name!r}: use letters, digits, '-' and '_' (64 at most), starting with a letter or digit")
    return name


def _not_declared_elsewhere(name: str, directory: Path) -> None:
    if (BUNDLED_DIR / "competition" / f"{name}.yaml").is_file():
        raise HarnessError(f"{name} is a bundled competition's name; choose another")
    for other in config_path():
        declared = other / "competition" / f"{name}.yaml"
        if other != directory and declared.is_file():
            raise HarnessError(f"competition {name} is already declared in {declared}; choose another name or remove that file")


def _compose(request: Request, name: str) -> tuple[dict[str, Any], Options, list[Table], Path | None]:
    """The competition's configuration (as the file will say it), the builder's options, the tables and folder."""
    source = Path(request.source).expanduser()
    if not source.exists():
        raise SourceError(f"--from {request.source}: no such file or folder")
    folder: Path | None = None
    if source.is_dir():
        builder, folder = "files", source.resolve()
        given = Path(request.table).expanduser() if request.table else _the_table(source)
    else:
        if request.table or request.file_column:
            raise SourceError("--table and --file-column are for a folder of files (--from FOLDER); --from names a table")
        builder, given = "tables", source
    tables = [read_table(given, "--from" if builder == "tables" else "--table")]  # messages name the files as given
    table_path = given.resolve()
    test_path = Path(request.test_table).expanduser() if request.test_table else None
    if test_path is not None:
        tables.append(read_table(test_path, "--test-table"))
        test_path = test_path.resolve()
    for table in tables:
        if request.target not in table.header:
            raise SourceError(f"{table.name} has no column {request.target!r} (--target); its columns: {', '.join(table.header)}")
    file_column = request.file_column
    if builder == "files" and file_column is None:
        file_column = _the_file_column(tables[0], folder)  # type: ignore[arg-type]
    values = [row[table.header.index(request.target)] for table in tables for row in table.rows]
    kind, classes, why = _task(request, values)
    primary, others = DEFAULT_METRICS[kind]
    if request.metric:
        primary, others = request.metric, [m for m in (DEFAULT_METRICS[kind][0], *others) if m != request.metric]
    _check_metrics([primary, *others], kind)
    competition: dict[str, Any] = {
        "name": name,
        "title": request.title or name,
        "prepare": builder,
        "source": {
            "table": str(table_path),
            "test_table": str(test_path) if test_path else None,
            "folder": str(folder) if folder else None,
            "file_column": file_column,
            "id_column": request.id_column,
            "drop_columns": list(request.drop_columns),
            "test_fraction": float(request.test_fraction),
        },
        "predictions": {"file": "predictions.csv", "id_column": "id", "kind": kind, "target_column": request.target, "classes": classes},
        "metrics": {"primary": primary, "others": others},
        "split": {
            "public_fraction": float(request.public_fraction),
            "group_column": request.group_column,
            "time_column": request.time_column,
        },
        "data": {"train_table": "train.csv", "test_table": "test.csv"},
        "kit": {"sample": SAMPLE},
    }
    if not 0 < request.public_fraction < 1:
        raise SourceError(f"--public-fraction: must be between 0 and 1, got {request.public_fraction}")
    if not 0.01 <= request.test_fraction <= 0.99:
        raise SourceError(f"--test-fraction: must be between 0.01 and 0.99, got {request.test_fraction}")
    options = Options.of(competition, builder)
    competition["_why"] = why
    return competition, options, tables, folder


def _task(request: Request, values: Sequence[str]) -> tuple[str, list[str], str]:
    if request.kind is None:
        kind, classes, why = infer_task(values)
        return kind, list(classes), why
    if request.kind == "value":
        return "value", [], "as --kind value says: a number to predict"
    distinct = sorted({v for v in values if v}, key=lambda v: (0, float(v), v) if _number(v) else (1, 0.0, v))
    return request.kind, distinct, f"as --kind {request.kind} says: {len(distinct)} classes"


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _check_metrics(names: list[str], kind: str) -> None:
    from harness.scoring import check_metrics

    try:
        check_metrics(names, kind)
    except ValueError as exc:
        raise SourceError(f"--metric: {exc}") from None


def _the_table(folder: Path) -> Path:
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (*TABLE_SUFFIXES, *PARQUET_SUFFIXES))
    if len(found) != 1:
        which = f"{len(found)} ({', '.join(p.name for p in found)})" if found else "none"
        raise SourceError(
            f"--from {folder}: the folder's top level should hold one table (.csv, .tsv or .parquet) mapping each file to its label, "
            f"found {which}; name it with --table"
        )
    return found[0]


def _the_file_column(table: Table, folder: Path) -> str:
    def names_files(column: int) -> bool:
        return all(row[column] and (folder / row[column]).is_file() for row in table.rows)

    found = [name for n, name in enumerate(table.header) if names_files(n)]
    if len(found) != 1:
        which = f"{len(found)} ({', '.join(found)})" if found else "none"
        raise SourceError(f"{table.name}: one column should name each row's file in {folder}, found {which}; name it with --file-column")
    return found[0]


def _split_words(options: Options, rule: str) -> str:
    return {
        "given": f"test table {Path(options.test_table or '').name}",
        "group": f"whole groups of {options.group}",
        "time": f"the latest rows by {options.time}",
        "random": "rows keyed at random",
    }[rule]


def _keep_secret(root: Path, secret: bytes) -> None:
    """The secret the files were checked with, where the builder reads it (hidden/, mode 0700; 0600)."""
    hidden = Path(root) / "hidden"
    hidden.mkdir(mode=0o700, parents=True, exist_ok=True)
    hidden.chmod(0o700)
    key = hidden / keyed.SECRET
    if key.is_file() and key.read_bytes() == secret:
        return
    key.touch(mode=0o600)
    key.chmod(0o600)
    key.write_bytes(secret)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- the competition file -------------------------------------------------------------------------


def render(request: Request, c: dict[str, Any], options: Options, tables: list[Table], rule: str) -> str:
    """The competition file: every choice of the command, each with a comment saying what it does."""
    s, p, m, sp = c["source"], c["predictions"], c["metrics"], c["split"]
    first = tables[0]
    builder = c["prepare"]
    columns = ", ".join(first.header[:12]) + (f" and {len(first.header) - 12} more" if len(first.header) > 12 else "")
    carve = {
        "given": "(not used: the test rows are test_table's)",
        "group": "whole groups of split.group_column, about this share",
        "time": "the latest rows by split.time_column",
        "random": "rows drawn at random, keyed by the competition's secret",
    }[rule]
    words = {"rmse": "root mean squared error, lower is better", "accuracy": "the share of ids predicted right, higher is better"}
    said = f" ({words[m['primary']]})" if m["primary"] in words else ""
    lines = [
        f"# The competition `{c['name']}`, written by `harness competition new` from {Path(request.source).name}.",
        "# Every choice below is the command's; change any, then build the data again with",
        f"# `harness data prepare {c['name']} --rebuild` (the same secret writes the same bytes). Keys not written",
        "# here take their defaults (quota, limits, leaderboard: see docs/organizer-guide.md).",
        f"name: {_yaml(c['name'])}",
        f"title: {_yaml(c['title'])}",
        "# The data builder: `tables` reads a labelled table of yours, `files` a folder of per-item files and",
        "# the table that maps each to its label. Either writes opaque ids keyed by the competition's secret",
        "# (hidden/secret), the rows in a keyed order, the split, the hidden labels and the public/private",
        "# assignment, and refuses data that would leak (a column repeating the target, rows or files on",
        "# both sides of the split).",
        f"prepare: {builder}",
        "source:",
        f"  # The labelled table ({len(first.rows)} rows; columns {columns}); CSV or Parquet.",
        f"  table: {_yaml(s['table'])}",
        "  # A labelled test table with the same columns; null: the test rows are carved out of `table`.",
        f"  test_table: {_yaml(s['test_table'])}",
    ]
    if builder == "files":
        lines += [
            "  # The folder of per-item files, and the column of `table` naming each row's file in it (relative to",
            "  # the folder). The files are copied under the rows' opaque ids; the table's other columns are features.",
            f"  folder: {_yaml(s['folder'])}",
            f"  file_column: {_yaml(s['file_column'])}",
        ]
    lines += [
        "  # Your own id column: its values are never published (each row gets an opaque keyed id); null: none.",
        f"  id_column: {_yaml(s['id_column'])}",
        "  # Columns never published (a note, a copy of the target under another name).",
        f"  drop_columns: {_yaml(s['drop_columns'])}",
        f"  # Share of the rows carved into test: {carve}.",
        f"  test_fraction: {_yaml(s['test_fraction'])}",
        "predictions:",
        "  # What infer writes: /output/<file> with the columns <id_column>,<target_column>.",
        f"  file: {_yaml(p['file'])}",
        f"  id_column: {_yaml(p['id_column'])}",
        f"  # From the target {request.target!r}: {c['_why']}. label: one class per row; probabilities:",
        "  # one column per class; value: a number.",
        f"  kind: {_yaml(p['kind'])}",
        f"  target_column: {_yaml(p['target_column'])}",
        "  # The classes (kind label or probabilities; in the order of the probabilities' columns).",
        f"  classes: {_yaml(p['classes'])}",
        "metrics:",
        f"  # Ranks the leaderboard: {m['primary']}{said}.",
        f"  primary: {_yaml(m['primary'])}",
        "  # Reported beside it, on every board.",
        f"  others: {_yaml(m['others'])}",
        "split:",
        "  # Share of the test ids scored on the public leaderboard (a keyed hash of the id decides which);",
        "  # the rest are private until the end.",
        f"  public_fraction: {_yaml(sp['public_fraction'])}",
        "  # Test rows are whole groups of this column: none of its values is in both train and test; null: none.",
        f"  group_column: {_yaml(sp['group_column'])}",
        "  # Every test row comes after every training row by this column (numbers or ISO dates); null: none.",
        f"  time_column: {_yaml(sp['time_column'])}",
        "data:",
        "  # The tables the containers read: /data/train/<train_table> (id, features, the target last) and",
        "  # /data/test/<test_table> (id, features).",
        f"  train_table: {_yaml(c['data']['train_table'])}",
        f"  test_table: {_yaml(c['data']['test_table'])}",
        "kit:",
        "  # The sample submission the participant kit ships: least squares on the table's numeric columns (numpy).",
        f"  sample: {_yaml(c['kit']['sample'])}",
    ]
    return "\n".join(lines) + "\n"


def _yaml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = yaml.safe_dump(str(value), default_flow_style=True, width=1 << 30, allow_unicode=True).strip()
    if "${" in text:
        raise SourceError(
            f"{value!r}: a name or path with '${{' cannot go into a competition file (it reads as an interpolation); rename it"
        )
    return text.removesuffix("...").strip()


def _shell(text: str) -> str:
    return text if re.fullmatch(r"[A-Za-z0-9_./:=@%+-]+", text) else "'" + text.replace("'", "'\\''") + "'"
