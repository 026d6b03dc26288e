"""Envelope format: signs, verifies with an independent library, refuses every tampering."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt
import pytest
from joserfc import jws
from joserfc.jwk import ECKey, OctKey

from edge.contracts.envelope import (
    TYP_CHECKPOINT,
    DeviceKey,
    b64url,
    read_header,
    verify_envelope,
    verify_jws,
)
from edge.contracts.errors import DockgateError, ErrorCode
from edge.trust.keys import generate_key
from edge.trust.signer import DeviceSigner
from tests.trust.pki import make_ca, make_device, make_events, signed


@pytest.fixture
def issuer(tmp_path: Path):  # type: ignore[no-untyped-def]
    return make_ca(tmp_path)


def _parts(token: str) -> tuple[dict, dict, str]:  # type: ignore[type-arg]
    h, p, s = token.split(".")
    dec = lambda x: json.loads(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))  # noqa: E731
    return dec(h), dec(p), s


def _code(token: str, key: DeviceKey) -> ErrorCode:
    with pytest.raises(DockgateError) as info:
        verify_envelope(token, key)
    return info.value.code


@pytest.mark.parametrize("kind", ["ed25519", "p256"])
def test_round_trip_and_pyjwt_verifies(issuer, kind: str) -> None:  # type: ignore[no-untyped-def]
    ident = make_device(issuer, "edge-01", kind=kind)
    event = make_events("edge-01", 1)[0]
    token = DeviceSigner(ident).sign_event(event.to_dict(), model_version="ocr@1.0")
    key = DeviceKey.from_cert(ident.cert)
    verified = verify_envelope(token, key)
    assert verified.event == event.to_dict() and verified.seq == 1
    assert verified.model_version == "ocr@1.0"
    # Independent library, given only the certificate's public key.
    alg = "EdDSA" if kind == "ed25519" else "ES256"
    decoded = jwt.api_jws.decode_complete(token, ident.cert.public_key(), algorithms=[alg])
    assert decoded["header"]["x5t#S256"] == key.fingerprint
    assert decoded["header"]["kid"] == "edge-01"
    # and joserfc, the library we sign with, agrees
    from edge.contracts.envelope import jwk_for

    assert jws.deserialize_compact(token, jwk_for(ident.cert.public_key()), algorithms=[alg])
    claims = json.loads(decoded["payload"])
    assert (
        claims["event"]["hash"] == event.hash and claims["seq"] == 1 and claims["dev"] == "edge-01"
    )


def test_changed_payload_byte_is_sig_invalid(issuer) -> None:  # type: ignore[no-untyped-def]
    ident = make_device(issuer, "edge-01")
    token = signed(ident, make_events("edge-01", 1))[0]
    h, p, s = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    i = raw.index(b'"n":1') + 4
    raw[i] = ord("7")  # one byte: n 1 -> 7
    tampered = f"{h}.{b64url(bytes(raw))}.{s}"
    assert _code(tampered, DeviceKey.from_cert(ident.cert)) is ErrorCode.SIG_INVALID


def test_alg_none_is_refused(issuer) -> None:  # type: ignore[no-untyped-def]
    ident = make_device(issuer, "edge-01")
    token = signed(ident, make_events("edge-01", 1))[0]
    header, _, _ = _parts(token)
    header["alg"] = "none"
    none_token = f"{b64url(json.dumps(header).encode())}.{token.split('.')[1]}."
    assert _code(none_token, DeviceKey.from_cert(ident.cert)) is ErrorCode.ALG_NOT_ALLOWED


def test_alg_other_than_certificate_is_refused(issuer) -> None:  # type: ignore[no-untyped-def]
    ident = make_device(issuer, "edge-01")  # Ed25519 certificate
    key = DeviceKey.from_cert(ident.cert)
    event = make_events("edge-01", 1)[0].to_dict()
    claims = json.dumps(
        {"v": 1, "dev": "edge-01", "seq": 1, "ts": event["ts"], "mv": None, "event": event}
    ).encode()
    header = {"typ": "dockgate-event+jws", "kid": "edge-01", "x5t#S256": key.fingerprint}
    # A valid ES256 signature by another key, and HS256 keyed with the public key (confusion).
    es = jws.serialize_compact(
        {**header, "alg": "ES256"},
        claims,
        ECKey.import_key(generate_key("p256")),
        algorithms=["ES256"],
    )
    assert _code(es, key) is ErrorCode.ALG_NOT_ALLOWED
    secret = OctKey.import_key(ident.cert.public_key().public_bytes_raw())  # type: ignore[union-attr]
    hs = jws.serialize_compact({**header, "alg": "HS256"}, claims, secret, algorithms=["HS256"])
    assert _code(hs, key) is ErrorCode.ALG_NOT_ALLOWED


def test_device_id_differing_from_certificate(issuer) -> None:  # type: ignore[no-untyped-def]
    a = make_device(issuer, "edge-01")
    b = make_device(issuer, "edge-02")
    # Device B's key signs an event that claims to be from A, naming B's certificate.
    event = make_events("edge-01", 1)[0].to_dict()
    signer_b = DeviceSigner(b)
    from edge.contracts.envelope import sign_envelope

    forged = sign_envelope(event, b.key, signer_b.fingerprint)
    assert read_header(forged)["kid"] == "edge-01"
    assert _code(forged, DeviceKey.from_cert(b.cert)) is ErrorCode.DEVICE_MISMATCH
    # The same envelope checked against A's certificate names a foreign certificate.
    assert _code(forged, DeviceKey.from_cert(a.cert)) is ErrorCode.DEVICE_MISMATCH
    with pytest.raises(ValueError):
        signer_b.sign_event(event)


def test_swapped_certificate_is_refused(issuer) -> None:  # type: ignore[no-untyped-def]
    a = make_device(issuer, "edge-01")
    a2 = make_device(issuer, "edge-01")  # same device id, another key (e.g. a cloned cert name)
    token = signed(a, make_events("edge-01", 1))[0]
    header, _, _ = _parts(token)
    header["x5t#S256"] = DeviceKey.from_cert(a2.cert).fingerprint
    h = b64url(json.dumps(header).encode())
    swapped = f"{h}.{token.split('.', 1)[1]}"
    assert _code(swapped, DeviceKey.from_cert(a2.cert)) is ErrorCode.SIG_INVALID
    # Verifying the untouched envelope with the other certificate: wrong certificate named.
    assert _code(token, DeviceKey.from_cert(a2.cert)) is ErrorCode.DEVICE_MISMATCH


def test_event_hash_must_match_signed_body(issuer) -> None:  # type: ignore[no-untyped-def]
    ident = make_device(issuer, "edge-01")
    event = make_events("edge-01", 1)[0].to_dict()
    event["payload"]["n"] = 99  # body changed before signing, hash left stale
    token = DeviceSigner(ident).sign_event(event)
    assert _code(token, DeviceKey.from_cert(ident.cert)) is ErrorCode.CHAIN_BROKEN


def test_checkpoint_cannot_pass_as_event(issuer) -> None:  # type: ignore[no-untyped-def]
    ident = make_device(issuer, "edge-01")
    signer = DeviceSigner(ident)
    ckpt = signer.sign_checkpoint(5, "ab" * 32, "2026-11-22T05:00:00.000Z")
    key = DeviceKey.from_cert(ident.cert)
    assert verify_jws(ckpt, key, TYP_CHECKPOINT)["seq"] == 5
    assert _code(ckpt, key) is ErrorCode.SIG_INVALID


@pytest.mark.parametrize("kind", ["ed25519", "p256"])
def test_any_flipped_signature_bit_is_refused(issuer, kind: str) -> None:  # type: ignore[no-untyped-def]
    ident = make_device(issuer, "edge-01", kind=kind)
    token = signed(ident, make_events("edge-01", 1))[0]
    h, p, s = token.split(".")
    raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    key = DeviceKey.from_cert(ident.cert)
    for bit in range(0, len(raw) * 8, 37):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert _code(f"{h}.{p}.{b64url(bytes(flipped))}", key) is ErrorCode.SIG_INVALID
    assert _code(f"{h}.{p}.{s}AA", key) is ErrorCode.SIG_INVALID  # trailing garbage
    assert _code(f"{h}.{p}={s}", key) is ErrorCode.SIG_INVALID


@pytest.mark.parametrize("junk", ["", "a.b", "a.b.c", "!!!.e30.x", "x" * 70000])
def test_garbage_is_sig_invalid(issuer, junk: str) -> None:  # type: ignore[no-untyped-def]
    ident = make_device(issuer, "edge-01")
    assert _code(junk, DeviceKey.from_cert(ident.cert)) is ErrorCode.SIG_INVALID
