"""Checking a device certificate against the fleet CA chain (offline, with ``cryptography``)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from edge.contracts.errors import DockgateError, ErrorCode


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _check_time(cert: x509.Certificate, at: dt.datetime, what: str) -> None:
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise DockgateError(
            ErrorCode.CERT_EXPIRED,
            f"{what} valid {cert.not_valid_before_utc:%Y-%m-%d}"
            f"..{cert.not_valid_after_utc:%Y-%m-%d}, not at {at:%Y-%m-%dT%H:%M:%SZ}",
        )


def verify_chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    roots: list[x509.Certificate],
    at: dt.datetime,
) -> None:
    """Raise ``CERT_CHAIN_INVALID`` or ``CERT_EXPIRED`` unless ``leaf`` chains to one of ``roots``.

    Walks issuer by issuer (at most 3 links), checking each signature with
    ``verify_directly_issued_by``, that every issuer is a CA, and validity at ``at``.
    """
    _check_time(leaf, at, "device certificate")
    current = leaf
    pool = intermediates + roots
    for _ in range(3):
        for root in roots:
            if _issued_by(current, root):
                _check_time(root, at, "fleet root")
                return
        parent = next((c for c in pool if c not in roots and _issued_by(current, c)), None)
        if parent is None:
            break
        _check_time(parent, at, "issuing CA")
        current = parent
    raise DockgateError(ErrorCode.CERT_CHAIN_INVALID, "certificate does not chain to the fleet CA")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject or not _is_ca(issuer):
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
