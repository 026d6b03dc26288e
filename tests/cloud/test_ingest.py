"""Ingest: verified, in order, once; gaps answered; refusals quarantined and audited."""

from __future__ import annotations

from sqlalchemy import func, select

from cloud.db.models import Audit, EventRow, Quarantine
from edge.contracts.errors import DockgateError, ErrorCode
from edge.trust.signer import DeviceSigner
from tests.cloud.env import CloudEnv
from tests.trust.pki import make_events, signed


def _count(cloud: CloudEnv, model: type, **where: object) -> int:
    with cloud.svc.sessions() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return int(s.scalar(q) or 0)


def test_batches_are_idempotent_and_answer_hwm(cloud: CloudEnv) -> None:
    ident = cloud.enroll("edge-01")
    client = cloud.client(ident)
    events = make_events("edge-01", 10)
    envs = signed(ident, events)
    r1 = client.push(envs[:6], None)
    assert (r1.hwm, r1.accepted, r1.duplicates, r1.resend_from) == (6, 6, 0, None)
    r2 = client.push(envs[3:], None)  # overlap: 4..6 again, then 7..10
    assert (r2.hwm, r2.accepted, r2.duplicates) == (10, 4, 3)
    assert r2.head_hash == events[-1].hash
    r3 = client.push(envs, None)  # a full resend changes nothing
    assert (r3.hwm, r3.accepted, r3.duplicates) == (10, 0, 10)
    assert _count(cloud, EventRow, device_id="edge-01") == 10
    assert _count(cloud, Quarantine) == 0


def test_gap_answers_resend_from_and_order_is_by_seq(cloud: CloudEnv) -> None:
    ident = cloud.enroll("edge-01")
    client = cloud.client(ident)
    envs = signed(ident, make_events("edge-01", 8))
    r = client.push([envs[0], envs[1], envs[4], envs[5]], None)
    assert (r.hwm, r.resend_from, r.accepted) == (2, 3, 2)
    r = client.push(list(reversed(envs[2:])), None)  # out of order in the batch: sorted by seq
    assert (r.hwm, r.resend_from, r.accepted) == (8, None, 6)


def test_tampered_and_foreign_envelopes_are_quarantined_and_audited(cloud: CloudEnv) -> None:
    a = cloud.enroll("edge-01")
    b = cloud.enroll("edge-02")
    client = cloud.client(a)
    envs = signed(a, make_events("edge-01", 3))
    h, p, sig = envs[0].split(".")
    bad_sig = f"{h}.{p}.{sig[:-4]}AAAA"
    r = client.push([bad_sig], None)
    assert r.hwm == 0 and [x.code for x in r.rejected] == ["SIG_INVALID"]
    # device B's valid envelope pushed on A's connection
    foreign = signed(b, make_events("edge-02", 1))[0]
    r = client.push([foreign], None)
    assert [x.code for x in r.rejected] == ["DEVICE_MISMATCH"]
    r = client.push(envs, None)
    assert r.hwm == 3 and not r.rejected
    assert _count(cloud, Quarantine, code="SIG_INVALID") == 1
    assert _count(cloud, Quarantine, code="DEVICE_MISMATCH") == 1
    assert _count(cloud, Audit, action="ingest.refuse") == 2


def test_fork_at_same_seq_is_flagged_never_merged(cloud: CloudEnv) -> None:
    ident = cloud.enroll("edge-01")
    client = cloud.client(ident)
    events = make_events("edge-01", 3)
    assert client.push(signed(ident, events), None).hwm == 3
    # root on the device rewrites event 2 (re-signing it with the stolen key)
    forged = make_events("edge-01", 2, kind="adjustment")[1]
    r = client.push(signed(ident, [forged]), None)
    assert [x.code for x in r.rejected] == ["CHAIN_FORK"] and r.hwm == 3
    with cloud.svc.sessions() as s:
        held = s.execute(select(EventRow.hash).where(EventRow.seq == 2)).scalar_one()
    assert held == events[1].hash
    conflicts = cloud.http.get("/v1/conflicts", headers=cloud.login("qa")).json()
    assert [c["code"] for c in conflicts] == ["CHAIN_FORK"]
    assert [
        d["forked"] for d in cloud.http.get("/v1/devices", headers=cloud.login("viewer")).json()
    ] == [True]


def test_next_event_must_extend_held_head(cloud: CloudEnv) -> None:
    ident = cloud.enroll("edge-01")
    client = cloud.client(ident)
    client.push(signed(ident, make_events("edge-01", 2)), None)
    rewritten = make_events("edge-01", 1, start=3)  # prev_hash = genesis, not event 2's hash
    r = client.push(signed(ident, rewritten), None)
    assert [x.code for x in r.rejected] == ["CHAIN_FORK"] and r.hwm == 2


def test_checkpoint_anchors_head_beyond_what_was_sent(cloud: CloudEnv) -> None:
    ident = cloud.enroll("edge-01")
    signer = DeviceSigner(ident)
    client = cloud.client(ident)
    events = make_events("edge-01", 5)
    ckpt = signer.sign_checkpoint(5, events[4].hash, events[4].ts)
    assert client.push(signed(ident, events[:2]), ckpt).hwm == 2
    # later, root rewrites events 3..5 before they were sent; the checkpoint exposes it
    rewritten = make_events("edge-01", 3, start=3, prev=events[1].hash, kind="adjustment")
    r = client.push(signed(ident, rewritten), None)
    assert r.hwm == 4 and [x.code for x in r.rejected] == ["CHAIN_FORK"]
    # a checkpoint contradicting stored events is a fork as well
    bad = signer.sign_checkpoint(1, "f" * 64, events[0].ts)
    r = client.push([], bad)
    assert [x.code for x in r.rejected] == ["CHAIN_FORK"]


def test_replayed_event_id_at_another_seq_is_refused(cloud: CloudEnv) -> None:
    ident = cloud.enroll("edge-01")
    client = cloud.client(ident)
    events = make_events("edge-01", 2)
    client.push(signed(ident, events), None)
    from edge.contracts.event import Event

    again = Event(**{**events[0].body(), "seq": 3, "prev_hash": events[1].hash}).sealed()
    r = client.push(signed(ident, [again]), None)
    assert [x.code for x in r.rejected] == ["REPLAY"] and r.hwm == 2


def test_replayed_request_is_refused(cloud: CloudEnv) -> None:
    ident = cloud.enroll("edge-01")
    signer = DeviceSigner(ident)
    from edge.contracts.sync import SyncBatch

    body = (
        SyncBatch(device_id="edge-01", envelopes=signed(ident, make_events("edge-01", 1)))
        .model_dump_json()
        .encode()
    )
    headers = {"Authorization": "Dockgate-Sig " + signer.sign_request("POST", "/v1/ingest", body)}
    assert cloud.http.post("/v1/ingest", content=body, headers=headers).status_code == 200
    again = cloud.http.post("/v1/ingest", content=body, headers=headers)
    assert again.status_code == 401 and again.json()["code"] == "REPLAY"
    assert again.headers["content-type"] == "application/problem+json"
    # a signature over another body does not authenticate this one
    other = cloud.http.post(
        "/v1/ingest", content=body.replace(b"edge-01", b"edge-01 "), headers=headers
    )
    assert other.status_code in (401, 422)


def test_revoked_device_new_submissions_refused_old_stay(cloud: CloudEnv) -> None:
    ident = cloud.enroll("edge-01")
    client = cloud.client(ident)
    envs = signed(ident, make_events("edge-01", 4))
    client.push(envs[:2], None)
    r = cloud.http.post("/v1/devices/edge-01/revoke", headers=cloud.login("admin"))
    assert r.status_code == 200 and r.json()["revoked_through_seq"] == 2
    r2 = client.push(envs[2:], None)
    assert {x.code for x in r2.rejected} == {"DEVICE_REVOKED"} and r2.hwm == 2
    assert _count(cloud, Quarantine, code="DEVICE_REVOKED") == 2
    events = cloud.http.get("/v1/devices/edge-01/events", headers=cloud.login("viewer")).json()
    assert [e["seq"] for e in events] == [1, 2]
    try:
        client.freezes(0, 0)
        raise AssertionError("revoked device polled freezes")
    except DockgateError as exc:
        assert exc.code is ErrorCode.DEVICE_REVOKED


def test_unknown_certificate_is_device_unknown(cloud: CloudEnv, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.trust.pki import make_ca, make_device

    other_fleet = make_ca(tmp_path / "other")
    stranger = make_device(other_fleet, "edge-01")
    ident = cloud.enroll("edge-01")
    r = cloud.client(ident).push(signed(stranger, make_events("edge-01", 1)), None)
    assert [x.code for x in r.rejected] == ["DEVICE_UNKNOWN"]
    try:
        cloud.client(stranger).push([], None)
        raise AssertionError("stranger authenticated")
    except DockgateError as exc:
        assert exc.code is ErrorCode.UNAUTHENTICATED


def test_malformed_batch_is_event_invalid(cloud: CloudEnv) -> None:
    ident = cloud.enroll("edge-01")
    signer = DeviceSigner(ident)
    body = b'{"device_id": "edge-01", "envelopes": "not-a-list"}'
    headers = {"Authorization": "Dockgate-Sig " + signer.sign_request("POST", "/v1/ingest", body)}
    r = cloud.http.post("/v1/ingest", content=body, headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "EVENT_INVALID"
