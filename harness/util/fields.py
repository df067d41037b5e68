"""Check a config mapping against a dataclass's fields, with errors that name the key."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any


def parse_fields(
    cls: type,
    mapping: Mapping[str, Any],
    where: str,
    parse: Callable[[str, Any], Any],
    error: Callable[[str], Exception],
    noun: str = "key",
) -> dict[str, Any]:
    """``{key: parse(key, raw)}`` for every key of ``mapping``; an unknown key or a bad value raises ``error``."""
    known = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise error(f"{where}.{unknown[0]}: unknown {noun} (known: {', '.join(known)})")
    values: dict[str, Any] = {}
    for key, raw in mapping.items():
        try:
            values[key] = parse(key, raw)
        except (TypeError, ValueError) as exc:
            raise error(f"{where}.{key}: {exc}") from None
    return values
