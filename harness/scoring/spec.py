"""``PredictionsSpec``: what the participant's predictions file must look like.

``PredictionsConfig`` is ``competition.predictions`` as the config writes it: the one place where
its keys, types and defaults live (``harness.competition.schema`` stores it in Hydra's
ConfigStore); ``PredictionsSpec`` is the checked form and takes its defaults from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.util.fields import parse_fields
from harness.util.sizes import parse_size

KINDS = ("label", "probabilities", "value")
CONTAINER_OUTPUT = "/output"


class PredictionsSpecError(ValueError):
    """The ``predictions`` section of a competition config is malformed; the message names the key."""


@dataclass
class PredictionsConfig:
    """``competition.predictions`` as written in a competition's YAML file."""

    file: str = "predictions.csv"  # the file infer writes under /output
    id_column: str = "id"
    kind: str = "label"  # label: one predicted class per row; probabilities: one column per class; value: a number
    target_column: str = "label"  # the predicted column (label and value kinds)
    classes: list[str] = field(default_factory=list)  # the classes, in column order for probabilities
    max_bytes: Any = "10m"  # largest predictions file scored


_DEFAULT = PredictionsConfig()


@dataclass(frozen=True)
class PredictionsSpec:
    """The checked predictions format. Defaults: ``PredictionsConfig``'s."""

    file: str = _DEFAULT.file
    id_column: str = _DEFAULT.id_column
    kind: str = _DEFAULT.kind
    target_column: str = _DEFAULT.target_column
    classes: tuple[str, ...] = tuple(_DEFAULT.classes)
    max_bytes: int = parse_size(_DEFAULT.max_bytes)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], where: str = "competition.predictions") -> PredictionsSpec:
        values = parse_fields(cls, mapping, where, _parse, PredictionsSpecError)
        try:
            return cls(**values)
        except PredictionsSpecError as exc:
            raise PredictionsSpecError(f"{where}.{exc}") from None

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem:
            raise PredictionsSpecError(f"{problem[0]}: {problem[1]}")

    def problem(self) -> tuple[str, str] | None:
        """The first inconsistency as ``(key, message)``, or None."""
        if self.kind not in KINDS:
            return "kind", f"must be one of {', '.join(KINDS)}"
        if not self.file or "/" in self.file or "\\" in self.file or self.file in (".", ".."):
            return "file", f"must be a plain file name inside {CONTAINER_OUTPUT}, got {self.file!r}"
        if not self.id_column.strip():
            return "id_column", "must not be empty"
        if self.kind != "probabilities" and not self.target_column.strip():
            return "target_column", "must not be empty"
        if self.kind != "probabilities" and self.target_column == self.id_column:
            return "target_column", f"must differ from id_column {self.id_column!r}"
        if len(set(self.classes)) != len(self.classes):
            return "classes", "must not repeat a class"
        if any(not c.strip() or c != c.strip() for c in self.classes):
            return "classes", "class names must be non-empty, without surrounding spaces"
        if self.kind == "probabilities" and len(self.classes) < 2:
            return "classes", "kind probabilities needs at least two classes (one column each)"
        if self.kind == "probabilities" and self.id_column in self.classes:
            return "classes", f"a class may not be named like the id column {self.id_column!r}"
        if self.kind == "value" and self.classes:
            return "classes", "kind value takes no classes"
        if self.max_bytes < 1:
            return "max_bytes", "must be at least 1 byte"
        return None

    @property
    def columns(self) -> tuple[str, ...]:
        """The header the file must have."""
        if self.kind == "probabilities":
            return (self.id_column, *self.classes)
        return (self.id_column, self.target_column)

    @property
    def container_path(self) -> str:
        """Where the participant's container must write the file."""
        return f"{CONTAINER_OUTPUT}/{self.file}"


def _parse(key: str, raw: Any) -> Any:
    if key == "max_bytes":
        if isinstance(raw, float) and not math.isfinite(raw):
            raise ValueError(f"must be a finite size, got {raw}")
        return parse_size(raw)
    if key == "classes":
        if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
            raise ValueError(f"must be a list of class names, got {raw!r}")
        if any(isinstance(c, (bool, float)) or not isinstance(c, (str, int)) for c in raw):
            raise ValueError("class names must be strings (or whole numbers)")
        return tuple(str(c) for c in raw)
    if not isinstance(raw, str):
        raise ValueError(f"must be a string, got {raw!r}")
    return raw
