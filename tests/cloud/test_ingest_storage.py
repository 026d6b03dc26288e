"""What ingest stores is exactly what the device signed (one-statement batch insert on
PostgreSQL, executemany on SQLite), and a batch's envelopes are each verified on their own
even when they share a certificate look-up."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from cloud.db.models import EventRow, Quarantine
from edge.contracts.event import GENESIS_HASH, Event
from edge.trust.signer import DeviceSigner
from tests.cloud.env import CloudEnv
from tests.trust.pki import make_events, signed

PAYLOADS: list[dict[str, object]] = [
    {"text": 'quote " backslash \\ slash / newline \n tab \t', "n": 1},
    {"text": "Prüfung ✓ 🚚 ünïcödé", "nested": {"list": [1, 2.5, None, True, "x"], "e": {}}},
    {"big": 2**53 - 1, "neg": -(2**53) + 1, "float": 0.1, "zero": 0, "false": False},
    {},
    {"control": "\x01\x1f", "empty": "", "sql": "'); DROP TABLE events; --"},
]


def _events(device_id: str) -> list[Event]:
    out, prev = [], GENESIS_HASH
    base = dt.datetime.now(dt.UTC)
    for seq, payload in enumerate(PAYLOADS, start=1):
        ts = (base + dt.timedelta(milliseconds=seq)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        e = Event(
            id=f"{device_id}-{seq:04d}",
            device_id=device_id,
            seq=seq,
            ts=ts,
            kind="carton-read",
            actor=f"device:{device_id}",
            payload=payload,
            prev_hash=prev,
        ).sealed()
        prev = e.hash
        out.append(e)
    return out


def test_stored_rows_are_exactly_the_signed_events(cloud: CloudEnv) -> None:
    ident = cloud.enroll("edge-01")
    signer = DeviceSigner(ident)
    events = _events("edge-01")
    versions = [None, "ocr@1.0", None, "defect@2", "ocr@1.0"]
    envs = [
        signer.sign_event(e.to_dict(), model_version=mv)
        for e, mv in zip(events, versions, strict=True)
    ]
    r = cloud.client(ident).push(envs, None)
    assert (r.hwm, r.accepted, r.rejected) == (len(events), len(events), [])
    with cloud.svc.sessions() as s:
        rows = s.scalars(select(EventRow).order_by(EventRow.seq)).all()
    assert len(rows) == len(events)
    for row, e, env, mv in zip(rows, events, envs, versions, strict=True):
        assert (row.id, row.device_id, row.seq, row.kind, row.actor, row.ts) == (
            e.id,
            e.device_id,
            e.seq,
            e.kind,
            e.actor,
            e.ts,
        )
        assert (row.hash, row.prev_hash, row.model_version) == (e.hash, e.prev_hash, mv)
        assert row.payload == e.payload
        assert row.envelope == env
        assert row.received_at is not None
    assert len({row.received_at for row in rows}) == 1  # one receive time per batch


def test_each_envelope_of_a_batch_is_verified_on_its_own(cloud: CloudEnv) -> None:
    """Envelopes sharing a header (so a certificate look-up) are still checked one by one."""
    ident = cloud.enroll("edge-01")
    other = cloud.enroll("edge-02")
    envs = signed(ident, make_events("edge-01", 3))
    h, p, sig = envs[1].split(".")
    bad_sig = f"{h}.{p}.{sig[:-4]}AAAA"  # same header as the good ones
    extra_part = envs[1] + ".AAAA"  # same header, not a compact JWS
    foreign = signed(other, make_events("edge-02", 1))[0]
    batch = [envs[0], bad_sig, foreign, extra_part, envs[1], envs[2]]
    r = cloud.client(ident).push(batch, None)
    assert (r.hwm, r.accepted) == (3, 3)
    assert sorted(x.code for x in r.rejected) == ["DEVICE_MISMATCH", "SIG_INVALID", "SIG_INVALID"]
    with cloud.svc.sessions() as s:
        held = s.scalars(select(Quarantine.envelope)).all()
    assert sorted(held) == sorted([bad_sig, foreign, extra_part])


def test_a_batch_may_mix_the_certificates_of_one_device(cloud: CloudEnv) -> None:
    """A device that re-enrolled (new key, new certificate) may still hold events signed with
    the old one: each envelope is verified against the certificate it names."""
    old = cloud.enroll("edge-01")
    new = cloud.enroll("edge-01")
    events = make_events("edge-01", 4)
    envs = signed(old, events[:2]) + signed(new, events[2:])
    r = cloud.client(new).push(envs, None)
    assert (r.hwm, r.accepted, r.rejected) == (4, 4, [])
    # and a swapped signature (old key's signature under the new certificate's header) fails
    forged_head = signed(new, events[:1])[0].split(".")[0]
    _, p, sig = envs[0].split(".")
    r = cloud.client(new).push([f"{forged_head}.{p}.{sig}"], None)
    assert [x.code for x in r.rejected] == ["SIG_INVALID"]
