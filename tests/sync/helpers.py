"""Edge side of sync tests: a real ledger file with a real device signer."""

from __future__ import annotations

from pathlib import Path

from edge.ledger import Ledger
from edge.sync.agent import SyncAgent
from edge.sync.config import SyncConfig
from edge.sync.state import StateFile
from edge.trust.keys import Identity
from edge.trust.signer import DeviceSigner
from tests.cloud.env import CloudEnv

ACTOR = "user:lin"


def seed(led: Ledger) -> None:
    led.add_sku("SKU-A", gtin="4006381333931", name="Tea 500 g", actor=ACTOR)
    led.add_sku("SKU-B", gtin="9506000134352", actor=ACTOR)
    led.add_location("A-01", "storage", rank=10, actor=ACTOR)
    led.add_location("A-02", "storage", rank=20, actor=ACTOR)


def open_ledger(tmp: Path, identity: Identity | None, device_id: str) -> Ledger:
    signer = DeviceSigner(identity) if identity is not None else None
    return Ledger.open(tmp / f"{device_id}.db", device_id, signer=signer)


def agent_for(cloud: CloudEnv, led: Ledger, identity: Identity, tmp: Path) -> SyncAgent:
    signer = DeviceSigner(identity)
    client = cloud.client(identity)
    client.signer = signer
    config = SyncConfig(cloud_url="http://testserver", batch_size=50, freeze_wait_s=0.5)
    return SyncAgent(led, client, signer, StateFile(tmp / f"{led.device_id}-state.json"), config)


def ledger_stock(led: Ledger) -> dict[tuple[str, str, str], int]:
    return {(r.location, r.sku, r.lot): r.qty for r in led.stock()}


def cloud_stock(cloud: CloudEnv, device_id: str) -> dict[tuple[str, str, str], int]:
    rows = cloud.http.get("/v1/stock", headers=cloud.login("viewer")).json()
    return {
        (r["location"], r["sku"], r["lot"]): r["qty"] for r in rows if r["device_id"] == device_id
    }
