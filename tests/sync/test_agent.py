"""The sync agent against a real ledger and a real cloud app (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.contracts.errors import DockgateError, ErrorCode
from edge.sync.agent import Backoff, SyncAgent
from edge.sync.client import CloudClient
from edge.sync.config import SyncConfig
from edge.sync.state import StateFile
from edge.trust.signer import DeviceSigner
from tests.cloud.env import CloudEnv, cloud_env, pg_schema
from tests.sync.helpers import ACTOR, agent_for, cloud_stock, ledger_stock, open_ledger, seed


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CloudEnv]:
    if request.param == "sqlite":
        with cloud_env(f"sqlite:///{tmp_path}/cloud.db", tmp_path) as env:
            yield env
        return
    with pg_schema(request.getfixturevalue("postgres_url")) as url, cloud_env(url, tmp_path) as env:
        yield env


def test_outbox_drains_exactly_once_and_stock_agrees(cloud: CloudEnv, tmp_path: Path) -> None:
    ident = cloud.enroll("edge-01")
    with open_ledger(tmp_path, ident, "edge-01") as led:
        seed(led)
        for i in range(30):
            led.receive("SKU-A", f"L{i % 4}", 5 + i, location="A-01", actor=ACTOR)
        led.pick(
            "SKU-A",
            "L0",
            3,
            from_location="A-01",
            actor=ACTOR,
            override_reason="test",
            supervisor="user:boss",
        )
        agent = agent_for(cloud, led, ident, tmp_path)
        sent = agent.drain()
        assert led.outbox_stats().pending == 0
        head = led.head()
        assert sent == head[0]
        assert agent.state.cloud_hwm == head[0] and agent.state.last_success
        assert agent.drain() == 0  # nothing left, nothing resent
        devices = cloud.http.get("/v1/devices", headers=cloud.login("viewer")).json()
        assert devices[0]["hwm_seq"] == head[0] and devices[0]["head_hash"] == head[1]
        assert cloud_stock(cloud, "edge-01") == ledger_stock(led)


def test_events_before_enrollment_are_signed_then_synced(cloud: CloudEnv, tmp_path: Path) -> None:
    with open_ledger(tmp_path, None, "edge-01") as led:  # no certificate yet
        seed(led)
        led.receive("SKU-A", "L1", 10, location="A-01", actor=ACTOR)
        assert led.outbox_stats().unsigned > 0
    ident = cloud.enroll("edge-01")
    with open_ledger(tmp_path, ident, "edge-01") as led:
        agent = agent_for(cloud, led, ident, tmp_path)
        agent.drain()
        assert led.outbox_stats().pending == 0
        assert cloud_stock(cloud, "edge-01") == ledger_stock(led)


def test_unreachable_cloud_is_a_code_and_a_sentence(
    cloud: CloudEnv, tmp_path: Path, port: int
) -> None:
    ident = cloud.enroll("edge-01")
    edge_dir = tmp_path / "edge"
    with open_ledger(edge_dir, ident, "edge-01") as led:
        seed(led)
        signer = DeviceSigner(ident)
        client = CloudClient(f"http://127.0.0.1:{port}", signer, timeout=2)
        config = SyncConfig(
            cloud_url=f"http://127.0.0.1:{port}",
            backoff_base_s=0.01,
            backoff_cap_s=0.1,
            interval_s=0.05,
        )
        agent = SyncAgent(led, client, signer, StateFile(edge_dir / "sync-state.json"), config)
        with pytest.raises(DockgateError) as info:
            agent.push_once()
        assert info.value.code is ErrorCode.SYNC_UNREACHABLE
        import threading

        stop = threading.Event()
        threads = agent.start(stop)
        stop.wait(0.5)
        stop.set()
        for t in threads:
            t.join(5)
        client.close()
        pending = led.outbox_stats().pending
        assert pending > 0  # nothing deleted without an acknowledgement
    toml = tmp_path / "edge.toml"
    toml.write_text(
        f'[device]\nid = "edge-01"\ndata_dir = "{edge_dir}"\n'
        f'[ledger]\npath = "{edge_dir / "edge-01.db"}"\n'
        f'[sync]\ncloud_url = "http://127.0.0.1:{port}"\n'
    )
    from edge.cli import cli

    out = CliRunner().invoke(cli, ["edge", "status", "--config", str(toml)])
    assert out.exit_code == 0, out.output
    assert f"pending      {pending} events" in out.output
    assert "last error   SYNC_UNREACHABLE: cloud unreachable" in out.output
    assert "last success never" in out.output


def test_freeze_propagates_and_late_pick_is_frozen_conflict(
    cloud: CloudEnv, tmp_path: Path
) -> None:
    id1, id2 = cloud.enroll("edge-01"), cloud.enroll("edge-02", site="site-02")
    with open_ledger(tmp_path, id1, "edge-01") as l1, open_ledger(tmp_path, id2, "edge-02") as l2:
        seed(l1)
        seed(l2)
        l1.receive("SKU-A", "LOT-9", 10, location="A-01", actor=ACTOR)
        l2.receive("SKU-A", "LOT-9", 10, location="A-01", actor=ACTOR)
        a1, a2 = agent_for(cloud, l1, id1, tmp_path), agent_for(cloud, l2, id2, tmp_path)
        a1.drain()
        a2.drain()
        l1.freeze("SKU-A", "LOT-9", reason="crushed cartons", actor="user:qa-wu")
        a1.drain()
        # edge-02 was "offline" (no poll yet) and picks the batch
        l2.pick("SKU-A", "LOT-9", 4, from_location="A-01", actor=ACTOR)
        a2.drain()
        conflicts = cloud.http.get(
            "/v1/conflicts?code=FROZEN_CONFLICT", headers=cloud.login("qa")
        ).json()
        assert len(conflicts) == 1 and conflicts[0]["device_id"] == "edge-02"
        cid = conflicts[0]["id"]
        note = {"note": "picked before the freeze reached edge-02; customer informed"}
        r = cloud.http.post(
            f"/v1/conflicts/{cid}/resolve", json=note, headers=cloud.login("viewer")
        )
        assert r.status_code == 403
        r = cloud.http.post(f"/v1/conflicts/{cid}/resolve", json=note, headers=cloud.login("qa"))
        assert r.status_code == 204
        again = cloud.http.get("/v1/conflicts", headers=cloud.login("qa")).json()
        assert again[0]["resolved_by"] == "qa-user"  # still listed, never hidden
        assert a2.state.conflicts_reported == 1
        # edge-02 comes online: the freeze arrives with the first poll
        assert a2.poll_freezes_once(wait=0.5) == 1
        frozen = {(b.sku, b.lot) for b in l2.frozen_batches()}
        assert ("SKU-A", "LOT-9") in frozen
        with pytest.raises(DockgateError) as refused:
            l2.pick("SKU-A", "LOT-9", 1, from_location="A-01", actor=ACTOR)
        assert refused.value.code is ErrorCode.BATCH_FROZEN
        assert a2.poll_freezes_once(wait=0.2) == 0  # the cursor moved; nothing twice
        a2.drain()  # the echo freeze syncs back without REPLAY and without a new broadcast
        assert a2.state.last_error_code is None
        assert a1.poll_freezes_once(wait=0.2) == 0
        hist = [e for e in l2.history(lot="LOT-9") if e.kind == "qa-freeze"]
        assert [e.actor for e in hist] == ["cloud:edge-01"]


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    b = Backoff(1.0, 30.0, random.Random(7))
    delays = [b.next_delay() for _ in range(10)]
    assert all(0 < d <= 30 for d in delays)
    assert delays[0] <= 1.0 and max(delays[5:]) > 4
    assert len(set(delays)) == len(delays)
    b.reset()
    assert b.next_delay() <= 1.0


def test_freeze_reaches_a_waiting_device_within_10_s(cloud: CloudEnv, tmp_path: Path) -> None:
    """edge-02 is online and long-polling; edge-01 freezes and syncs; measure until booked."""
    import threading
    import time

    id1, id2 = cloud.enroll("edge-01"), cloud.enroll("edge-02")
    with open_ledger(tmp_path, id1, "edge-01") as l1, open_ledger(tmp_path, id2, "edge-02") as l2:
        seed(l1)
        seed(l2)
        a1, a2 = agent_for(cloud, l1, id1, tmp_path), agent_for(cloud, l2, id2, tmp_path)
        got: list[float] = []

        def poll() -> None:
            while not got:
                if a2.poll_freezes_once(wait=5):
                    got.append(time.monotonic())

        waiter = threading.Thread(target=poll, name="test-freeze-poll")
        waiter.start()
        time.sleep(0.3)  # the long poll is waiting in the cloud
        start = time.monotonic()
        l1.freeze("SKU-B", "LOT-X", reason="smell", actor="user:qa-wu")
        a1.drain()
        waiter.join(20)
        assert got, "freeze never arrived"
        assert got[0] - start < 10.0
        assert ("SKU-B", "LOT-X") in {(b.sku, b.lot) for b in l2.frozen_batches()}


def test_device_clock_off_by_an_hour_still_syncs(cloud: CloudEnv, tmp_path: Path) -> None:
    ident = cloud.enroll("edge-01")
    client = cloud.client(ident)
    client.signer.clock_offset = -3600.0  # an edge box without RTC battery, an hour behind
    with open_ledger(tmp_path, ident, "edge-01") as led:
        seed(led)
        r = client.push([env for _, _, env in led.outbox_pending(10)], None)
    assert r.hwm > 0 and abs(client.signer.clock_offset) < 60


def test_agent_heals_a_cloud_restored_from_an_old_backup(cloud: CloudEnv, tmp_path: Path) -> None:
    """The cloud lost events it had acknowledged; the edge re-sends them from its log."""
    from sqlalchemy import delete, select, update

    from cloud.db.models import Device, EventRow, Stock

    ident = cloud.enroll("edge-01")
    with open_ledger(tmp_path, ident, "edge-01") as led:
        seed(led)
        led.receive("SKU-A", "L1", 10, location="A-01", actor=ACTOR)
        agent = agent_for(cloud, led, ident, tmp_path)
        agent.drain()
        keep = 2
        with cloud.svc.sessions.begin() as s:  # "restore" a backup holding only 2 events
            head = s.execute(select(EventRow.hash).where(EventRow.seq == keep)).scalar_one()
            s.execute(delete(EventRow).where(EventRow.seq > keep))
            s.execute(delete(Stock))
            s.execute(
                update(Device).values(hwm_seq=keep, head_hash=head, ckpt_seq=0, ckpt_hash=None)
            )
        led.receive("SKU-A", "L2", 5, location="A-01", actor=ACTOR)
        for _ in range(10):
            agent.drain()
            if agent.state.cloud_hwm == led.head()[0]:
                break
        assert agent.state.cloud_hwm == led.head()[0]
        with cloud.svc.sessions() as s:
            seqs = list(s.scalars(select(EventRow.seq).order_by(EventRow.seq)))
        assert seqs == list(range(1, led.head()[0] + 1))


def test_wiped_and_reenrolled_node_never_loses_its_outbox(cloud: CloudEnv, tmp_path: Path) -> None:
    """Same device id, new disk: the cloud holds another chain; nothing may be acknowledged."""
    ident = cloud.enroll("edge-01")
    with open_ledger(tmp_path / "old", ident, "edge-01") as led:
        seed(led)
        led.receive("SKU-A", "L1", 10, location="A-01", actor=ACTOR)
        agent_for(cloud, led, ident, tmp_path / "old").drain()
    ident2 = cloud.enroll("edge-01")
    with open_ledger(tmp_path / "new", ident2, "edge-01") as led:
        seed(led)
        led.receive("SKU-B", "L9", 3, location="A-02", actor=ACTOR)
        pending = led.outbox_stats().pending
        agent = agent_for(cloud, led, ident2, tmp_path / "new")
        with pytest.raises(DockgateError) as info:
            agent.push_once()
        assert info.value.code is ErrorCode.SYNC_REJECTED
        assert led.outbox_stats().pending == pending
    conflicts = cloud.http.get("/v1/conflicts?code=CHAIN_FORK", headers=cloud.login("qa")).json()
    assert conflicts


def test_tls_ca_file_builds_a_verifying_context(tmp_path: Path) -> None:
    import ssl

    from tests.trust.pki import make_ca

    issuer = make_ca(tmp_path)
    ca = tmp_path / "cloud-ca.pem"
    ca.write_text(issuer.chain_pem())
    ctx = SyncConfig(tls_ca_file=ca).tls_verify()
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert SyncConfig().tls_verify() is True
