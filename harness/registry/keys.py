"""The token issuer's key: an EC P-256 private key and the self-signed certificate the registry trusts.

The registry (distribution 2.8) reads the certificate from ``rootcertbundle`` and accepts a token
whose header ``kid`` equals the libtrust fingerprint of the certificate's public key, so ``kid`` is
computed here exactly as libtrust does."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.util.errors import HarnessError

KEY_FILE = "key.pem"
CERT_FILE = "cert.pem"
CERT_YEARS = 10  # the registry does not check the dates of rootcertbundle; a long life spares renewals


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """libtrust's key id: base32 (no padding) of the first 30 bytes of SHA-256 of the PKIX DER key,
    in groups of 4 joined by ':' (``ABCD:EFGH:...``, 12 groups)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


@dataclass(frozen=True)
class IssuerKey:
    """The issuer's private key, the path of its certificate (the registry's ``rootcertbundle``) and its ``kid``."""

    private_key: ec.EllipticCurvePrivateKey
    cert_path: Path
    kid: str

    @classmethod
    def load_or_create(cls, directory: Path) -> IssuerKey:
        """The key in ``directory/key.pem`` (made, mode 600, when absent); ``cert.pem`` is rewritten
        when missing or not for this key, since it is derived from the key alone."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_path = directory / KEY_FILE
        if not key_path.exists():
            _create_exclusive(key_path, _new_key_pem())
        private_key = _load_key(key_path)
        cert_path = directory / CERT_FILE
        if not _certifies(cert_path, private_key.public_key()):
            _write_replace(cert_path, _self_signed(private_key).public_bytes(serialization.Encoding.PEM), mode=0o644)
        return cls(private_key=private_key, cert_path=cert_path, kid=libtrust_key_id(private_key.public_key()))


def _new_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    fix = f"restore it, or remove {path.parent} to make a new issuer key (then restart the service)"
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise HarnessError(f"the registry issuer key {path} cannot be read ({exc.strerror or exc}); {fix}") from None
    except (ValueError, TypeError) as exc:
        raise HarnessError(f"the registry issuer key {path} is damaged ({exc}); {fix}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise HarnessError(f"the registry issuer key {path} is not an EC P-256 key; {fix}")
    return key


def _certifies(cert_path: Path, public_key: ec.EllipticCurvePublicKey) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.public_key() == public_key


def _self_signed(private_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harness registry token issuer")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365 * CERT_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )


def _temp_with(path: Path, data: bytes, mode: int) -> str:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _create_exclusive(path: Path, data: bytes) -> None:
    """Write a new private key whole, mode 600; when two processes race, the first one's key stays."""
    tmp = _temp_with(path, data, 0o600)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_replace(path: Path, data: bytes, *, mode: int) -> None:
    tmp = _temp_with(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
