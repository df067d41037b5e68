"""Strings from the service shown as data: a hostile message or log cannot drive the terminal."""

from __future__ import annotations

import re

# C0 and C1 controls (ESC starts every ANSI sequence; CSI is U+009B), DEL, and the bidirectional
# overrides that can make a line read differently from what it holds.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_KEPT_IN_LOGS = "\n\t"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: object) -> str:
    """``text`` on one line, every control character written out (``\\x1b``) instead of acted on."""
    return _CONTROLS.sub(_escape, "" if text is None else str(text))


def shown_log(text: str) -> str:
    """A log for the terminal: its lines and tabs kept, every other control character written out."""
    return _CONTROLS.sub(lambda m: m.group() if m.group() in _KEPT_IN_LOGS else _escape(m), text)
