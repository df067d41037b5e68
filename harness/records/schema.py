"""Generate the record's JSON Schema from its models: ``python -m harness.records.schema [--check]``.

Writes ``harness/records/schema/evaluation-1.schema.json``; ``--check`` only says whether the
checked-in file is what the models generate (exit 1 when it drifted).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from harness.records.model import Record
from harness.records.record import SCHEMA_ID, SCHEMA_PATH

DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _Generator(GenerateJsonSchema):
    """Pydantic's generator without a title on every property (the models' titles stay)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def record_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``harness.evaluation/1``, as generated from ``harness.records.model.Record``."""
    generated = Record.model_json_schema(by_alias=True, mode="validation", schema_generator=_Generator)
    header = {"$schema": DIALECT, "$id": SCHEMA_ID, "title": "Evaluation record"}
    body = {k: v for k, v in generated.items() if k not in ("title", "$defs")}
    return {**header, **body, "$defs": generated["$defs"]}


def render() -> str:
    """The schema file's text."""
    return json.dumps(record_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.records.schema", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the checked-in schema differs from the models")
    parser.add_argument("--output", type=Path, default=SCHEMA_PATH, help=f"where to write it (default {SCHEMA_PATH})")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} differs from the models: run `python -m harness.records.schema`", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
