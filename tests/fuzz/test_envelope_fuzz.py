"""Fuzzing signed envelopes (edge/contracts/envelope.py ``verify_envelope``).

Random strings, mutated valid tokens, and tokens correctly signed by the device key over
arbitrary payloads (what a buggy or compromised device could send: odd JSON, NaN, huge numbers,
deep nesting). Criterion: always a DockgateError with a stable code, never another exception.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

from edge.contracts.envelope import (
    TYP_EVENT,
    DeviceKey,
    b64url,
    sign_envelope,
    verify_envelope,
)
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.event import event_hash
from tests.fuzz.budget import budget

KEY = ed25519.Ed25519PrivateKey.generate()
_NAME = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "edge-01")])
CERT = (
    x509.CertificateBuilder()
    .subject_name(_NAME)
    .issuer_name(_NAME)
    .public_key(KEY.public_key())
    .serial_number(1)
    .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    .not_valid_after(dt.datetime(2036, 1, 1, tzinfo=dt.UTC))
    .sign(KEY, None)
)
DEVICE = DeviceKey.from_cert(CERT)

STABLE = {
    ErrorCode.SIG_INVALID,
    ErrorCode.ALG_NOT_ALLOWED,
    ErrorCode.DEVICE_MISMATCH,
    ErrorCode.EVENT_INVALID,
    ErrorCode.CHAIN_BROKEN,
}
HEADER = {"alg": "EdDSA", "typ": TYP_EVENT, "kid": "edge-01", "x5t#S256": DEVICE.fingerprint}


def _event(seq: int = 7) -> dict[str, Any]:
    body = {
        "id": "0190b7c0-4a1e-7c3d-8f21-5e0c2a9d1b77",
        "device_id": "edge-01",
        "seq": seq,
        "ts": "2026-11-22T05:30:00.000Z",
        "kind": "carton-read",
        "actor": "device:edge-01",
        "payload": {"gtin": "09506000134352"},
        "prev_hash": "0" * 64,
    }
    return {**body, "hash": event_hash(body)}


VALID = sign_envelope(_event(), KEY, DEVICE.fingerprint)


def _signed_raw(header: bytes, payload: bytes) -> str:
    """A compact JWS with a correct signature over arbitrary header/payload bytes."""
    signing_input = b64url(header) + "." + b64url(payload)
    return signing_input + "." + b64url(KEY.sign(signing_input.encode("ascii")))


# Faults this fuzzer found in edge/contracts/envelope.py are fixed and pinned by
# test_found_faults_are_refused_with_a_code; the fuzz tests tolerate no exception type.
KNOWN: tuple[type[BaseException], ...] = ()  # all found faults are fixed: tolerate nothing


def _refused(token: str, tolerate: tuple[type[BaseException], ...] = KNOWN) -> ErrorCode | None:
    try:
        verify_envelope(token, DEVICE)
    except DockgateError as exc:
        assert exc.code in STABLE, exc
        return exc.code
    except tolerate:
        return None
    raise AssertionError(f"accepted a token that is not the valid one: {token[:80]!r}")


def test_valid_token_verifies() -> None:
    assert verify_envelope(VALID, DEVICE).seq == 7


@budget(300)
@given(st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_.=-]{0,300}", fullmatch=True))
def test_random_tokens(token: str) -> None:
    _refused(token)


@budget(300)
@given(st.data())
def test_mutated_tokens(data: st.DataObject) -> None:
    chars = list(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(chars) - 1))
        op = data.draw(st.sampled_from(["flip", "drop", "dup", "cut"]))
        if op == "flip":
            chars[i] = data.draw(st.sampled_from("Aa0_-.=+/\x00é"))
        elif op == "drop":
            del chars[i]
        elif op == "dup":
            chars[i:i] = chars[i : i + 10]
        else:
            chars = chars[:i]
        if not chars:
            break
    token = "".join(chars)
    if token != VALID:
        _refused(token)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@budget(300)
@given(json_values, st.data())
def test_signed_arbitrary_claims(value: Any, data: st.DataObject) -> None:
    """Correctly signed, but the claims (or the event inside) are anything at all."""
    where = data.draw(st.sampled_from(["claims", "event", "payload", "seq"]))
    event = _event()
    claims: Any = {"v": 1, "dev": "edge-01", "seq": 7, "ts": event["ts"], "mv": None}
    if where == "claims":
        claims = value
    elif where == "event":
        claims["event"] = value
    elif where == "payload":
        event["payload"] = value  # hash left stale unless the value is the original
        claims["event"] = event
    else:
        claims["seq"] = value
        claims["event"] = event
    # allow_nan: json.dumps writes NaN/Infinity literals, which json.loads accepts
    _refused(_signed_raw(json.dumps(HEADER).encode(), json.dumps(claims).encode()))


def _with_nan() -> bytes:
    event = _event()
    claims = {"v": 1, "dev": "edge-01", "seq": 7, "ts": event["ts"]}
    return json.dumps({**claims, "event": {**event, "payload": {"x": float("nan")}}}).encode()


H, P, S = VALID.split(".")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
HDR = json.dumps(HEADER).encode()
FAULTS = {
    # unsigned: anyone can send these (the cloud reads the header before it knows the device)
    "unsigned-header-nesting": b64url(b"[" * 2_000) + ".e30." + b64url(b"x" * 64),
    "unsigned-signature-85-chars": f"{H}.{P}.{S[:-1]}",
    "unsigned-signature-1-char": f"{H}.{P}.A",
    # the same 64 signature bytes spelled with other unused low bits in the last character
    "unsigned-signature-respelled": f"{H}.{P}.{S[:-1]}{_ALPHABET[_ALPHABET.index(S[-1]) ^ 1]}",
    # signed by the device key: a buggy or compromised device
    "signed-payload-nesting": _signed_raw(HDR, b"[" * 20_000 + b"]" * 20_000),
    "signed-event-with-nan": _signed_raw(HDR, _with_nan()),
    "signed-event-with-2**60": _signed_raw(
        HDR, _with_nan().replace(b"NaN", b"1152921504606846976")
    ),
}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_found_faults_are_refused_with_a_code(name: str) -> None:
    """Found by this fuzzer: RecursionError from json.loads, binascii.Error from a signature
    of 1 mod 4 characters, rfc8785's CanonicalizationError from event_hash, and a signature
    respelled in its last character's unused bits that still verified; now stable codes."""
    _refused(FAULTS[name], tolerate=())


def test_other_pathological_tokens() -> None:
    for body in (b'{"v": 1, "dev": "edge-01", "seq": ' + b"9" * 5000 + b"}", b"\xff\xfe"):
        _refused(_signed_raw(HDR, body), tolerate=())
    for header in (b"\xff", b"null", b"[]", b'{"alg": "none"}'):
        _refused(b64url(header) + ".e30." + b64url(b"x" * 64), tolerate=())
    _refused("x" * 70_000, tolerate=())
