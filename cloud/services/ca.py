"""The fleet certificate authority: an offline root, an issuing intermediate, device certificates.

``init_ca`` writes the root key next to its certificate with mode 0600; the running service is
only ever given the *issuing* directory, so the root key is never loaded by a process that serves
requests (keep ``root/`` on a USB stick after init). Device certificates name the device id in the
common name, the site in the organisational unit and the organisation in O.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.contracts.errors import DockgateError, ErrorCode

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
ROOT_DIR, ISSUING_DIR = "root", "issuing"


def _write(path: Path, data: bytes, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _ca_cert(
    subject: x509.Name,
    public: ed25519.Ed25519PublicKey,
    issuer: x509.Name,
    signer: ed25519.Ed25519PrivateKey,
    days: int,
    path_length: int,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(signer, None)
    )


def init_ca(ca_dir: Path, org: str, root_days: int = 7300, issuing_days: int = 1825) -> Path:
    """Create root and issuing CA under ``ca_dir``; refuses to overwrite. Returns the chain file."""
    if (ca_dir / ROOT_DIR).exists() or (ca_dir / ISSUING_DIR).exists():
        raise DockgateError(
            ErrorCode.CONFIG_INVALID, f"{ca_dir} already holds a CA; not overwritten"
        )
    root_key = ed25519.Ed25519PrivateKey.generate()
    root_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Dockgate fleet root ({org})"),
        ]
    )
    root = _ca_cert(root_name, root_key.public_key(), root_name, root_key, root_days, 1)
    issuing_key = ed25519.Ed25519PrivateKey.generate()
    issuing_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Dockgate issuing CA ({org})"),
        ]
    )
    issuing = _ca_cert(issuing_name, issuing_key.public_key(), root_name, root_key, issuing_days, 0)
    _write(ca_dir / ROOT_DIR / "root.key", _key_pem(root_key), private=True)
    _write(ca_dir / ROOT_DIR / "root.crt", _pem(root), private=False)
    _write(ca_dir / ISSUING_DIR / "issuing.key", _key_pem(issuing_key), private=True)
    _write(ca_dir / ISSUING_DIR / "issuing.crt", _pem(issuing), private=False)
    _write(ca_dir / ISSUING_DIR / "root.crt", _pem(root), private=False)
    chain = ca_dir / "chain.pem"
    _write(chain, _pem(issuing) + _pem(root), private=False)
    return chain


@dataclass(frozen=True)
class Issuer:
    """The issuing intermediate the service signs device certificates with."""

    key: ed25519.Ed25519PrivateKey
    cert: x509.Certificate
    root: x509.Certificate

    def chain_pem(self) -> str:
        return (_pem(self.cert) + _pem(self.root)).decode()


def load_issuer(issuing_dir: Path) -> Issuer:
    key_path = issuing_dir / "issuing.key"
    if not key_path.exists():
        raise DockgateError(
            ErrorCode.CONFIG_INVALID,
            f"no issuing CA in {issuing_dir}: run 'dockgate cloud ca init'",
        )
    if key_path.stat().st_mode & 0o077:
        raise DockgateError(
            ErrorCode.CONFIG_INVALID, f"{key_path} is readable by others; chmod 600"
        )
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"{key_path}: not an Ed25519 key")
    cert = x509.load_pem_x509_certificate((issuing_dir / "issuing.crt").read_bytes())
    root = x509.load_pem_x509_certificate((issuing_dir / "root.crt").read_bytes())
    return Issuer(key, cert, root)


def issue_device_cert(
    issuer: Issuer, csr_pem: str, device_id: str, site: str, org: str, days: int = 730
) -> x509.Certificate:
    """Sign a device CSR, self-signed by an Ed25519/P-256 key and naming ``device_id``."""
    for value in (device_id, site, org):
        if not NAME_PATTERN.match(value):
            raise DockgateError(ErrorCode.EVENT_INVALID, f"bad name {value!r} (2-63 of a-z0-9-)")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError:
        raise DockgateError(ErrorCode.CERT_CHAIN_INVALID, "CSR is not PEM") from None
    if not csr.is_signature_valid:
        raise DockgateError(ErrorCode.SIG_INVALID, "CSR self-signature does not verify")
    public = csr.public_key()
    if not (
        isinstance(public, ed25519.Ed25519PublicKey)
        or (
            isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1)
        )
    ):
        raise DockgateError(ErrorCode.ALG_NOT_ALLOWED, "device key must be Ed25519 or ECDSA P-256")
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != device_id:
        raise DockgateError(ErrorCode.DEVICE_MISMATCH, f"CSR does not name device {device_id!r}")
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, site),
            x509.NameAttribute(NameOID.COMMON_NAME, device_id),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), issuer.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"urn:dockgate:device:{org}:{site}:{device_id}")]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
        .sign(issuer.key, None)
    )
