"""The edge clock jumps back and forward by hours: order and data come from sequence numbers, and
the cloud flags the skew (``CLOCK_SKEW`` audit entries keeping both times).

The jump is injected through the clock seam (``edge/contracts/clock.py``,
``DOCKGATE_CLOCK_OFFSET_FILE``), never by changing the machine's clock. The ledger books in this
process; ``dockgate edge sync --once`` pushes each segment from its own process with the same
skewed clock, so its signed requests are refused once with ``CLOCK_SKEW``, it learns the server's
time from the answer and retries (the request path), while the events keep the device's times.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from cloud.config import CloudConfig
from cloud.db.models import Audit, EventRow, Stock
from cloud.deps import Services
from edge.contracts.clock import ENV, set_offset
from edge.ledger import Ledger
from edge.trust.enroll import enroll
from edge.trust.keys import load_identity
from edge.trust.signer import DeviceSigner
from tests.sync.procs import CloudProcess, dockgate

REPO = Path(__file__).resolve().parents[2]
HOUR = 3600.0
SEGMENTS = [0.0, -3 * HOUR, 5 * HOUR, 0.0]  # on time, set back 3 h, 5 h ahead, corrected
PER_SEGMENT = 6


@pytest.mark.slow
def test_clock_jumps_keep_order_and_are_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offset = tmp_path / "clock-offset"
    set_offset(offset, 0.0)
    monkeypatch.setenv(ENV, str(offset))
    dockgate("cloud", "ca", "init", "--dir", str(tmp_path / "ca"), "--org", "org-01")
    db_url = f"sqlite:///{tmp_path}/cloud.db"
    cloud = CloudProcess(tmp_path, db_url, tmp_path / "ca" / "issuing").start()
    try:
        token = dockgate("cloud", "token", "create", "--config", str(cloud.config),
                         "--org", "org-01", "--site", "site-01").stdout.strip()  # fmt: skip
        data = tmp_path / "edge"
        enroll(data / "trust", cloud.url, token, "edge-01")
        config = tmp_path / "edge.toml"
        config.write_text(
            f'[device]\nid = "edge-01"\ndata_dir = "{data}"\n'
            f'[sync]\ncloud_url = "{cloud.url}"\ntimeout_s = 10\n'
        )
        signer = DeviceSigner(load_identity(data / "trust"))
        first_seqs = []
        with Ledger.open(data / "ledger.db", "edge-01", signer=signer) as led:
            led.add_sku("SKU-A", gtin="4006381333931", actor="user:t")
            led.add_location("A-01", "storage", rank=10, actor="user:t")
            for n, seconds in enumerate(SEGMENTS):
                set_offset(offset, seconds)
                first_seqs.append(led.head()[0] + 1)
                for i in range(PER_SEGMENT):
                    led.receive("SKU-A", f"L{n}-{i}", 5, location="A-01", actor="user:t")
                pushed = subprocess.run(
                    [sys.executable, "-m", "edge.cli_main", "edge", "sync", "--once",
                     "--config", str(config)],
                    capture_output=True, text=True, timeout=120, check=False,
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                )  # fmt: skip
                assert pushed.returncode == 0, pushed.stdout + pushed.stderr
            report = led.verify()
            head = led.head()[0]
            edge_events = led.events(0, head + 1)
            edge_stock = {(r.location, r.sku, r.lot): r.qty for r in led.stock()}
    finally:
        cloud.stop()
    assert report.ok, report
    # the wall clock went back twice, the sequence never did
    edge_ts = [e.ts for e in edge_events]
    assert edge_ts != sorted(edge_ts)
    assert [e.seq for e in edge_events] == list(range(1, head + 1))
    svc = Services.from_config(
        CloudConfig(database_url=db_url, issuing_dir=tmp_path / "ca" / "issuing"),
        run_migrations=False,
    )
    try:
        with svc.sessions() as s:
            rows = s.execute(select(EventRow).order_by(EventRow.seq)).scalars().all()
            flags = s.execute(
                select(Audit).where(Audit.action == "clock.skew").order_by(Audit.id)
            ).scalars().all()  # fmt: skip
            cloud_stock = {
                (r.location, r.sku, r.lot): r.qty for r in s.execute(select(Stock)).scalars()
            }
            request_skews = s.execute(
                select(Audit).where(Audit.code == "CLOCK_SKEW", Audit.action != "clock.skew")
            ).scalars().all()  # fmt: skip
            flagged = [(f.code, f.detail["kind"], f.detail["seq"]) for f in flags]
            details = [f.detail for f in flags]
    finally:
        svc.close()
    # nothing lost, nothing reordered: the cloud holds the edge's events in sequence order,
    # each with the device's own time and the server's receive time
    assert [(r.seq, r.id, r.ts) for r in rows] == [(e.seq, e.id, e.ts) for e in edge_events]
    assert all(r.received_at is not None for r in rows)
    assert cloud_stock == edge_stock
    # one flag per jump: back 3 h, ahead 5 h, back 5 h when the clock is corrected
    assert flagged == [
        ("CLOCK_SKEW", "backwards", first_seqs[1]),
        ("CLOCK_SKEW", "ahead", first_seqs[2]),
        ("CLOCK_SKEW", "backwards", first_seqs[3]),
    ], details
    assert all(d["device_ts"] and d["server_ts"] for d in details)
    assert abs(details[1]["skew_s"] - 5 * HOUR) < 120
    print(f"\nclock jumps: flags {flagged}; refused skewed requests audited: {len(request_skews)}")
