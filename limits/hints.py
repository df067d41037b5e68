"""Hints: the rule of the contract that explains a failure, and what to do about it.

A runtime error's message quotes its output's last lines; when those lines show a mistake that the
contract explains (a write outside the writable paths, infer looking for a file that train left
outside ``/model``, a call to the network), ``runtime_hint`` names the rule in one sentence. When
the predictions file is missing but ``/output`` holds other files, ``found_files_hint`` names them.
Pure: text in, text out. The output is the participant's, so every name quoted from it is bounded
and escaped, and each line is searched only around a fixed phrase (no regex runs over a long line).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

# The contract: what each phase may write (the root file system and /data are read-only).
WRITABLE = {
    "train": "train may write only to /model (kept for infer) and /tmp (emptied when train ends)",
    "infer": "infer may write only to /output and /tmp",
}
KEPT = "/model"  # the only path that survives from train to infer
_MOUNTED = ("/model", "/data", "/output")
_IMAGE_SYSTEM = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev")

READ_ONLY = "Read-only file system"
MISSING = "No such file or directory"
# What Python, pip, requests, urllib, Hugging Face, curl, wget and apt print without a network.
NETWORK = (
    "Temporary failure in name resolution",
    "Name or service not known",
    "No address associated with hostname",
    "Network is unreachable",
    "getaddrinfo failed",
    "Failed to resolve",
    "Could not resolve host",
    "unable to resolve host address",
    "Temporary failure resolving",
    "Failed to establish a new connection",
    "Max retries exceeded",
    "NewConnectionError",
    "urlopen error",
    "Could not fetch URL",
    "No matching distribution found",
    "couldn't connect to",
    "requests.exceptions.ConnectionError",
)
_NETWORK_LOWER = tuple(p.lower() for p in NETWORK)

NO_NETWORK = "there is no network during evaluation: put every dependency (packages, model weights, data) into the image when you build it"
SHOWN_NAMES = 5  # files named by found_files_hint
_WINDOW = 400  # characters looked at on each side of a phrase
_NAME_CHARS = 80
_PLAIN = re.compile(r"[\w./+@:,=~-]+")


def runtime_hint(phase: str, log_tail: str) -> str | None:
    """The hint for a phase that exited non-zero with ``log_tail``, or None.

    The last line of the tail that names a known failure decides (the latest error is the one that
    ended the program); a line that names one the contract does not explain gives no hint.
    """
    for line in reversed(log_tail.splitlines()):
        if READ_ONLY in line:
            return _read_only(phase, _named_path(line, READ_ONLY))
        lowered = line.lower()
        if any(phrase in lowered for phrase in _NETWORK_LOWER):
            return NO_NETWORK
        if MISSING in line:
            return _missing(phase, _named_path(line, MISSING))
    return None


def found_files_hint(expected: str, names: Sequence[tuple[str, bool]]) -> str | None:
    """The hint for ``expected`` (``/output/predictions.csv``) not written while its directory holds
    ``names`` (each ``(name, is_directory)``), or None when it holds nothing. The likeliest first:
    the same name in another case, then other CSV files."""
    if not names:
        return None
    directory, wanted = posixpath.split(expected)
    ranked = sorted(names, key=lambda entry: (entry[0].casefold() != wanted.casefold(), not entry[0].lower().endswith(".csv"), entry[0]))
    shown = [_show(posixpath.join(directory, name) + "/" * is_dir) for name, is_dir in ranked[:SHOWN_NAMES]]
    rest = len(names) - len(shown)
    found = ", ".join(shown) + (f" and {rest} more" if rest else "")
    return f"found {found}: write the predictions to {expected}"


def with_hint(message: str, hint: str | None) -> str:
    """``message`` with its hint on a line of its own at the end, after the error it explains."""
    return f"{message}\nhint: {hint}" if hint else message


def _read_only(phase: str, path: str | None) -> str | None:
    if phase not in WRITABLE:
        return None
    where = f"{_show(path)} is on a read-only file system" if path else "the file system is read-only there"
    return f"{where}: {WRITABLE[phase]}"


def _missing(phase: str, path: str | None) -> str | None:
    if phase != "infer" or not path or _under(path, _MOUNTED + _IMAGE_SYSTEM):
        return None
    return f"only {KEPT} survives between phases: if train wrote {_show(path)}, write it to {KEPT} in train and read it from there in infer"


def _named_path(line: str, phrase: str) -> str | None:
    """The path an error line names beside ``phrase``: Python's ``...: '/app/x'`` after it,
    coreutils' ``'/app/x': ...`` or sh's and cat's ``/app/x: ...`` before it."""
    at = line.find(phrase)
    after = line[at + len(phrase) : at + len(phrase) + _WINDOW]
    if match := re.match(r": (['\"])(.+?)\1", after):
        return match.group(2)
    before = line[max(0, at - _WINDOW) : at]
    if match := re.search(r"(?:'([^']+)'|(?<=\s)([^\s']+)): $", before):  # not a line's first word: a program's name
        return match.group(1) or match.group(2)
    return None


def _under(path: str, roots: Sequence[str]) -> bool:
    path = posixpath.normpath(path)
    return any(path == root or path.startswith(root + "/") for root in roots)


def _show(name: str) -> str:
    """A name from the participant's output, safe to print: bounded, and escaped unless plain."""
    if len(name) > _NAME_CHARS:
        name = name[: _NAME_CHARS - 3] + "..."
    return name if _PLAIN.fullmatch(name) else ascii(name)
