"""Enrollment: the device makes its own key, sends only a CSR and a one-time token.

The private key is written (0600) before anything goes on the network and never leaves the
device; the cloud answers with the device certificate and the fleet CA chain.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from edge.contracts.envelope import PrivateKey, device_id_of
from edge.contracts.errors import DockgateError, ErrorCode
from edge.trust.keys import (
    CERT_FILE,
    CHAIN_FILE,
    KEY_FILE,
    Identity,
    generate_key,
    key_pem,
    load_private_key,
    write_private,
    write_public,
)


def build_csr(key: PrivateKey, device_id: str) -> str:
    """A PEM CSR naming ``device_id``, self-signed by ``key`` (proof of possession)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)])
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(key, algorithm)
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def enroll(
    trust_dir: Path,
    cloud_url: str,
    token: str,
    device_id: str,
    key_kind: str = "ed25519",
    timeout: float = 15.0,
    verify_tls: bool | ssl.SSLContext = True,
) -> Identity:
    """Enroll this device with the cloud at ``cloud_url`` using a one-time ``token``.

    A key left by an interrupted enrollment is reused, so a retry does not orphan a key.
    """
    key_path = trust_dir / KEY_FILE
    if key_path.exists():
        key = load_private_key(key_path)
    else:
        key = generate_key(key_kind)
        write_private(key_path, key_pem(key))
    body = {"token": token, "device_id": device_id, "csr": build_csr(key, device_id)}
    try:
        with httpx.Client(timeout=timeout, verify=verify_tls) as client:
            response = client.post(cloud_url.rstrip("/") + "/v1/enroll", json=body)
    except httpx.HTTPError as exc:
        raise DockgateError(
            ErrorCode.SYNC_UNREACHABLE, f"cannot reach {cloud_url}: {type(exc).__name__}"
        ) from None
    if response.status_code != 200:
        raise _problem_error(response)
    data = response.json()
    cert = x509.load_pem_x509_certificate(str(data["certificate"]).encode())
    if device_id_of(cert) != device_id or cert.public_key() != key.public_key():
        raise DockgateError(
            ErrorCode.CERT_CHAIN_INVALID, "the cloud returned a foreign certificate"
        )
    write_public(trust_dir / CERT_FILE, str(data["certificate"]).encode())
    write_public(trust_dir / CHAIN_FILE, str(data["chain"]).encode())
    chain = x509.load_pem_x509_certificates(str(data["chain"]).encode())
    return Identity(key, cert, chain)


def _problem_error(response: httpx.Response) -> DockgateError:
    """Turn an RFC 9457 problem answer into the matching stable error."""
    try:
        problem = response.json()
        code = ErrorCode(problem.get("code"))
        return DockgateError(code, str(problem.get("detail") or problem.get("title")))
    except (ValueError, AttributeError):
        return DockgateError(ErrorCode.SYNC_REJECTED, f"HTTP {response.status_code} from cloud")
