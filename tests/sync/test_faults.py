"""Fault injection with real processes: edge and cloud as subprocesses, a fault proxy between.

During the run the proxy drops, delays, cuts (request and response) and duplicates requests; the
edge is SIGKILLed at random points and restarted; the cloud is SIGKILLed mid-batch and
restarted. Afterwards (faults off, outbox drained): the cloud holds every edge event exactly once,
every chain verifies, both sides' stock agree, and nothing was quarantined.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import select

from cloud.config import CloudConfig
from cloud.db.models import DeviceCert, EventRow, Quarantine, Stock
from cloud.deps import Services
from edge.contracts.envelope import DeviceKey, verify_envelope
from edge.contracts.event import GENESIS_HASH, event_hash
from edge.ledger import Ledger
from edge.trust.enroll import enroll
from tests.cloud.env import pg_schema
from tests.support.net import free_port
from tests.sync.procs import CloudProcess, dockgate
from tests.sync.proxy import FaultProxy

REPO = Path(__file__).resolve().parents[2]
TARGET = 240  # booked operations (plus master data, re-booked at each restart)


def _start_edge(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                str(REPO / "tests" / "sync" / "edge_node.py"),
                str(config),
                str(TARGET),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )


def _outbox_and_ops(ledger_path: Path) -> tuple[int, int]:
    if not ledger_path.exists():
        return -1, 0
    conn = sqlite3.connect(f"file:{ledger_path}?mode=ro", uri=True, timeout=10)
    try:
        pending = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        ops = conn.execute(
            "SELECT COUNT(*) FROM events WHERE kind IN ('receipt', 'transfer')"
        ).fetchone()[0]
        return int(pending), int(ops)
    except sqlite3.OperationalError:
        return -1, 0
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_chaos_exactly_once_chains_and_stock_agree(
    tmp_path: Path, db: str, request: pytest.FixtureRequest
) -> None:
    if db == "sqlite":
        _chaos(tmp_path, f"sqlite:///{tmp_path}/cloud.db")
        return
    with pg_schema(request.getfixturevalue("postgres_url")) as url:
        _chaos(tmp_path, url)


def _chaos(tmp_path: Path, db_url: str) -> None:
    rng = random.Random(20261122)
    dockgate("cloud", "ca", "init", "--dir", str(tmp_path / "ca"), "--org", "org-01")
    cloud = CloudProcess(tmp_path, db_url, tmp_path / "ca" / "issuing").start()
    proxy_port = free_port()
    proxy = FaultProxy(proxy_port, cloud.port, seed=rng.randrange(1 << 30)).start()
    edge: subprocess.Popen[bytes] | None = None
    try:
        token = dockgate(
            "cloud",
            "token",
            "create",
            "--config",
            str(cloud.config),
            "--org",
            "org-01",
            "--site",
            "site-01",
        ).stdout.strip()
        data = tmp_path / "edge"
        enroll(data / "trust", cloud.url, token, "edge-01")
        config = tmp_path / "edge.toml"
        config.write_text(
            f'[device]\nid = "edge-01"\ndata_dir = "{data}"\n'
            f'[sync]\ncloud_url = "http://127.0.0.1:{proxy_port}"\ninterval_s = 0.05\n'
            "backoff_base_s = 0.05\nbackoff_cap_s = 0.5\nbatch_size = 8\ntimeout_s = 3\n"
            "freeze_wait_s = 1\n"
        )
        log = tmp_path / "edge.log"
        edge = _start_edge(config, log)
        kills = restarts = 0
        deadline = time.monotonic() + 18
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.5, 2.0))
            if rng.random() < 0.7:
                edge.send_signal(signal.SIGKILL)
                edge.wait(10)
                kills += 1
                edge = _start_edge(config, log)
            else:
                cloud.kill()
                time.sleep(rng.uniform(0.0, 0.8))
                cloud.start()
                restarts += 1
        proxy.enabled = False
        ledger_path = data / "ledger.db"
        converge = time.monotonic() + 90
        while time.monotonic() < converge:
            pending, ops = _outbox_and_ops(ledger_path)
            if pending == 0 and ops == TARGET:
                break
            time.sleep(0.3)
        assert (pending, ops) == (0, TARGET), log.read_text()[-3000:]
        edge.send_signal(signal.SIGTERM)
        edge.wait(60)
        edge = None
    finally:
        if edge is not None:
            edge.kill()
            edge.wait(10)
        proxy.stop()
        cloud.stop()
    faults = dict(proxy.counts)
    print(f"chaos: {kills} edge SIGKILLs, {restarts} cloud restarts, proxy faults {faults}")
    assert kills >= 4 and restarts >= 1, (kills, restarts)
    assert all(faults.get(f, 0) > 0 for f in ("drop", "cut_response", "duplicate", "delay"))
    _check_consistency(tmp_path, db_url, ledger_path)


def _check_consistency(tmp_path: Path, db_url: str, ledger_path: Path) -> None:
    with Ledger.open(ledger_path, "edge-01") as led:
        report = led.verify()
        assert report.ok, report
        head_seq, _ = led.head()
        edge_events = led.events(0, head_seq + 10)
        edge_stock = {(r.location, r.sku, r.lot): r.qty for r in led.stock()}
    svc = Services.from_config(
        CloudConfig(database_url=db_url, issuing_dir=tmp_path / "ca" / "issuing"),
        run_migrations=False,
    )
    try:
        with svc.sessions() as s:
            rows = s.execute(select(EventRow).order_by(EventRow.seq)).scalars().all()
            certs = s.execute(select(DeviceCert)).scalars().all()
            key = DeviceKey.from_cert(x509.load_pem_x509_certificate(certs[0].cert_pem.encode()))
            quarantined = s.execute(select(Quarantine)).scalars().all()
            cloud_stock = {
                (r.location, r.sku, r.lot): r.qty for r in s.execute(select(Stock)).scalars()
            }
    finally:
        svc.close()
    # exactly once: same ids, same order, no more, no less
    assert [r.id for r in rows] == [e.id for e in edge_events]
    assert [r.seq for r in rows] == list(range(1, head_seq + 1))
    prev = GENESIS_HASH
    for row, event in zip(rows, edge_events, strict=True):
        verified = verify_envelope(row.envelope, key)
        assert verified.event == event.to_dict()
        body = {k: v for k, v in verified.event.items() if k != "hash"}
        assert event_hash(body) == row.hash and row.prev_hash == prev
        prev = row.hash
    assert not quarantined, [(q.code, q.reason) for q in quarantined]
    assert cloud_stock == edge_stock
