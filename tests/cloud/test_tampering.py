"""The issue's tampering list, at ingest: each refused with its code, quarantined and audited."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from sqlalchemy import select

from cloud.db.models import Audit, Quarantine
from cloud.services.registry import create_token, enroll
from edge.contracts.envelope import DeviceKey, b64url
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.event import Event
from edge.trust.enroll import build_csr
from edge.trust.keys import Identity, generate_key
from tests.cloud.env import CloudEnv
from tests.trust.pki import make_events, signed


def _flip_payload_byte(token: str) -> str:
    h, p, s = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    i = raw.index(b'"n":') + 4
    raw[i] = ord("9") if raw[i] != ord("9") else ord("8")
    return f"{h}.{b64url(bytes(raw))}.{s}"


def _swap_cert(token: str, other: DeviceKey) -> str:
    h, rest = token.split(".", 1)
    header = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    header["x5t#S256"] = other.fingerprint
    return f"{b64url(json.dumps(header).encode())}.{rest}"


def test_each_tampering_refused_quarantined_audited(cloud: CloudEnv) -> None:
    a, b = cloud.enroll("edge-01"), cloud.enroll("edge-02")
    events = make_events("edge-01", 3)
    envs = signed(a, events)
    client = cloud.client(a)
    assert client.push(envs[:2], None).hwm == 2
    replay = Event(**{**events[0].body(), "seq": 3, "prev_hash": events[1].hash}).sealed()
    cases = [
        ("changed payload byte", _flip_payload_byte(envs[2]), "SIG_INVALID"),
        (
            "swapped certificate",
            _swap_cert(envs[2], DeviceKey.from_cert(b.cert)),
            "DEVICE_MISMATCH",
        ),
        ("replayed envelope", signed(a, [replay])[0], "REPLAY"),
    ]
    for what, token, code in cases:
        r = client.push([token], None)
        assert [x.code for x in r.rejected] == [code], what
        assert r.hwm == 2, what
    cloud.http.post("/v1/devices/edge-01/revoke", headers=cloud.login("admin"))
    r = client.push([envs[2]], None)
    assert [x.code for x in r.rejected] == ["DEVICE_REVOKED"]
    with cloud.svc.sessions() as s:
        quarantined = [
            q.code for q in s.execute(select(Quarantine).order_by(Quarantine.id)).scalars()
        ]
        audited = [
            a.code
            for a in s.execute(
                select(Audit).where(Audit.action == "ingest.refuse").order_by(Audit.id)
            ).scalars()
        ]
    expected = ["SIG_INVALID", "DEVICE_MISMATCH", "REPLAY", "DEVICE_REVOKED"]
    assert quarantined == expected and audited == expected
    rows = cloud.http.get("/v1/quarantine", headers=cloud.login("qa")).json()
    assert [q["code"] for q in rows] == expected and all(q["reason"] for q in rows)


def test_expired_certificate_cannot_submit(cloud: CloudEnv) -> None:
    key = generate_key()
    with cloud.svc.sessions.begin() as s:
        token = create_token(s, "test", "org-01", "site-01", None, dt.timedelta(hours=1))
        done = enroll(
            s, cloud.svc.require_issuer(), token, "edge-05", build_csr(key, "edge-05"), days=0
        )
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(done.certificate.encode())
    ident = Identity(key, cert, [])
    import time

    time.sleep(1.1)
    with pytest.raises(DockgateError) as info:
        cloud.client(ident).push([], None)
    assert info.value.code is ErrorCode.CERT_EXPIRED
