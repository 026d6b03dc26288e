"""Signing keys of the model-release repository (TUF roles), kept apart from the device CA.

One Ed25519 key per TUF role. The targets, snapshot and timestamp keys live on the release
server under ``<repo>/keys/`` (timestamp must be online: it is re-signed at least daily). The
root key is written to a separate path the operator moves off the server after ``keys init``;
it is only needed again to rotate keys. Every private key file is created with mode 0600 and
never overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey

from edge.contracts.errors import DockgateError, ErrorCode

ROLES = ("root", "targets", "snapshot", "timestamp")
ONLINE_ROLES = ("targets", "snapshot", "timestamp")


def write_private_key(path: Path) -> CryptoSigner:
    """Create a new Ed25519 key at ``path`` (mode 0600, refuses to overwrite)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # O_EXCL: never clobber an existing key; 0600 from the first byte, not chmod afterwards.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise DockgateError(
            ErrorCode.CONFIG_INVALID, f"{path} already exists; refusing to overwrite a key"
        ) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    return signer_from_key(key)


def signer_from_key(key: Ed25519PrivateKey) -> CryptoSigner:
    public = SSlibKey.from_crypto(key.public_key())
    return CryptoSigner(key, public)


def load_signer(path: Path) -> CryptoSigner:
    """Load a role key written by :func:`write_private_key`; refuses group/world-readable files."""
    try:
        mode = path.stat().st_mode & 0o077
        data = path.read_bytes()
    except OSError as exc:
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"release key {path}: {exc}") from None
    if mode:
        raise DockgateError(
            ErrorCode.CONFIG_INVALID, f"release key {path} is readable by others (chmod 600 it)"
        )
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"release key {path} is not Ed25519")
    return signer_from_key(key)
