"""The kit-leak search: what of the organizer's test side (test ids, hidden label rows, test input
files, the secret) the bytes of a participant kit hold, archives and compressed members unpacked."""

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import io
import lzma
import re
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def every_bytes(name: str, data: bytes, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """``(name, data)``, then every member of it, when it is an archive (zip, tar) or a compressed
    stream (gzip, bzip2, xz), unpacked recursively: the bytes a participant could read out of it."""
    yield name, data
    if depth >= 4:
        return
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.infolist():
                yield from every_bytes(f"{name}!{member.filename}", archive.read(member), depth + 1)
        return
    for decompress in (gzip.decompress, bz2.decompress, lzma.decompress):
        try:
            inner = decompress(data)
        except (OSError, EOFError, ValueError, lzma.LZMAError):
            continue
        yield from every_bytes(f"{name}!", inner, depth + 1)
        return
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive.getmembers():
                if member.isfile():
                    yield from every_bytes(f"{name}!{member.name}", archive.extractfile(member).read(), depth + 1)
    except tarfile.TarError:
        pass


def secrets_of(organizer: Path) -> dict[str, bytes]:
    """What must never be in a kit, each under a name that says what it is: every test id, every
    row of the hidden labels, every test input file (images, any per-id file) that is not also a
    training file, and the competition's secret key (raw, hex, base64)."""
    public = set(digests(organizer / "data" / "train").values())
    found = {}
    for line in (organizer / "hidden" / "labels.csv").read_text().splitlines()[1:]:
        found[f"label row {line}"] = line.encode()
        found[f"test id {line.split(',')[0]}"] = line.split(",")[0].encode()
    test = organizer / "data" / "test"
    for path in sorted(p for d in test.iterdir() if d.is_dir() for p in d.rglob("*") if p.is_file()):
        if hashlib.sha256(path.read_bytes()).hexdigest() not in public:
            found[f"test file {path.relative_to(test).as_posix()}"] = path.read_bytes()
    key = (organizer / "hidden" / "secret").read_bytes()
    for form, value in {
        "raw": key,
        "hex": key.hex().encode(),
        "HEX": key.hex().upper().encode(),
        "base64": base64.b64encode(key).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(key).rstrip(b"="),
    }.items():
        found[f"the secret key ({form})"] = value
    return found


def leaks(kit: Path, secret: dict[str, bytes]) -> list[tuple[str, str]]:
    """(file in the kit, what of ``secret`` its bytes hold), for every file and archive member."""
    pattern = re.compile(b"|".join(re.escape(value) for value in sorted(set(secret.values()), key=len, reverse=True)))
    names = {value: name for name, value in secret.items()}
    found = []
    for path in sorted(p for p in kit.rglob("*") if p.is_file()):
        for name, data in every_bytes(path.relative_to(kit).as_posix(), path.read_bytes()):
            found += [(name, names[match.group()]) for match in pattern.finditer(data)]
    return found
