"""An edge node for system tests, run as its own process: ledger writer + sync agent.

``python tests/sync/edge_node.py CONFIG TARGET``: books TARGET operations (receipts into A-01
and transfers to A-02) with deterministic event ids, so a restart after SIGKILL re-runs the plan
and every operation already durable is a no-op, while the sync agent pushes the outbox. It never
exits by itself; the test kills it (SIGKILL during the chaos, SIGTERM at the end).
"""

from __future__ import annotations

import signal
import sys
import threading
import uuid
from pathlib import Path

from edge.config import load_edge_config
from edge.ledger import Ledger
from edge.sync.agent import SyncAgent
from edge.sync.client import CloudClient
from edge.sync.state import StateFile
from edge.trust.keys import load_identity
from edge.trust.signer import DeviceSigner

NS = uuid.UUID("8d7f3f9e-1c7b-4d67-9b0a-5e2f1c0d5050")
ACTOR = "user:chaos"


def op_id(i: int) -> str:
    return str(uuid.uuid5(NS, f"op-{i}"))


def main() -> None:
    cfg = load_edge_config(Path(sys.argv[1]))
    target = int(sys.argv[2])
    signer = DeviceSigner(load_identity(cfg.sync.resolved_trust_dir(cfg.device.data_dir)))
    ledger = Ledger.open(cfg.ledger.resolved_path(cfg.device), cfg.device.id, signer=signer)
    ledger.add_sku("SKU-A", gtin="4006381333931", actor=ACTOR)
    ledger.add_location("A-01", "storage", rank=10, actor=ACTOR)
    ledger.add_location("A-02", "storage", rank=20, actor=ACTOR)
    assert cfg.sync.cloud_url
    client = CloudClient(cfg.sync.cloud_url, signer, cfg.sync.timeout_s)
    agent = SyncAgent(
        ledger, client, signer, StateFile(cfg.device.data_dir / "sync-state.json"), cfg.sync
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = agent.start(stop)
    for i in range(target):
        if stop.is_set():
            break
        lot = f"L{i // 2:05d}"
        if i % 2 == 0:
            ledger.receive("SKU-A", lot, 10, location="A-01", actor=ACTOR, event_id=op_id(i))
        else:
            ledger.transfer(
                "SKU-A", lot, 4, from_location="A-01", to="A-02", actor=ACTOR, event_id=op_id(i)
            )
        stop.wait(0.005)
    print("WRITTEN", flush=True)
    stop.wait()
    for t in threads:
        t.join(30)
    client.close()
    ledger.close()


if __name__ == "__main__":
    main()
