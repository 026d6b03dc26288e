"""The device's own key and certificate on disk (private key mode 0600, never sent anywhere)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from edge.contracts.envelope import PrivateKey
from edge.contracts.errors import DockgateError, ErrorCode

KEY_FILE = "device.key"
CERT_FILE = "device.crt"
CHAIN_FILE = "ca-chain.pem"


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the first byte (no window where others can read it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)  # umask cannot widen it, but an existing file may have had other bits
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def generate_key(kind: str = "ed25519") -> PrivateKey:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key kind {kind!r} (ed25519 or p256)")


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(path: Path) -> PrivateKey:
    if path.stat().st_mode & 0o077:
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"{path} is readable by others; chmod 600 it")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"{path}: not an Ed25519/P-256 key")
    return key


@dataclass(frozen=True)
class Identity:
    """An enrolled device: its key, its certificate and the fleet CA chain it chains to."""

    key: PrivateKey
    cert: x509.Certificate
    chain: list[x509.Certificate]


def load_identity(trust_dir: Path) -> Identity:
    """Load the enrolled identity from ``trust_dir``; ``NOT_ENROLLED`` when there is none."""
    key_path, cert_path = trust_dir / KEY_FILE, trust_dir / CERT_FILE
    if not cert_path.exists() or not key_path.exists():
        raise DockgateError(
            ErrorCode.NOT_ENROLLED,
            f"no device certificate in {trust_dir}: run 'dockgate edge enroll'",
        )
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    chain_path = trust_dir / CHAIN_FILE
    chain = x509.load_pem_x509_certificates(chain_path.read_bytes()) if chain_path.exists() else []
    return Identity(load_private_key(key_path), cert, chain)
