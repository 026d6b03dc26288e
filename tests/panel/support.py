"""Builds a real panel for tests: a real ledger file, a real sample directory, real accounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pyotp
from argon2 import PasswordHasher
from fastapi import FastAPI

from edge.ledger import Ledger
from edge.panel.app import create_app
from edge.panel.config import PanelConfig
from edge.panel.equipment import SyncStatusProvider
from edge.panel.providers import NodeDeviceProvider
from edge.panel.review_store import SampleReviewQueue
from edge.panel.services import CARTON_TOPIC, CartonEvent, DefectBox, PanelServices
from edge.panel.users import Role, UserStore
from edge.runtime.bus import Bus
from edge.vision.ocr.samples import SampleStore

PASSWORD = "correct horse battery"
GTIN_A = "06901234567892"
GTIN_B = "06901234567809"
XSS = '<script>alert("x")</script>'
# argon2id with a small cost so the suite is fast; production uses argon2-cffi's defaults
# (test_production_hasher_uses_recommended_cost checks that).
FAST_ARGON2 = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
USERS = {"op": Role.OPERATOR, "qa": Role.QA, "sup": Role.SUPERVISOR, "root": Role.ADMIN}


def crop_image(seed: int, w: int = 320, h: int = 192, text: str = "LOT A24B117") -> np.ndarray:
    """A carton-like crop: kraft background with dark print (deterministic)."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), (92, 150, 196), np.uint8)
    img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
    cv2.putText(
        img, "(01)06901234567892", (12, 70), cv2.FONT_HERSHEY_SIMPLEX, 0.72, (35, 30, 30), 2
    )
    cv2.putText(img, text, (12, 120), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (35, 30, 30), 2)
    return img


def png(seed: int, w: int = 320, h: int = 192, text: str = "LOT A24B117") -> bytes:
    ok, buf = cv2.imencode(".png", crop_image(seed, w, h, text))
    assert ok
    return bytes(buf)


@dataclass
class PanelEnv:
    app: FastAPI
    bus: Bus
    ledger: Ledger
    samples: SampleStore
    r1: str  # sample id of a REVIEW read
    r2: str  # sample id of an UNREADABLE carton held in quarantine
    users: UserStore
    totp_secret: str
    config: PanelConfig


def seed_ledger(ledger: Ledger) -> None:
    a = "user:seed"
    today = date.today()
    ledger.add_location("INBOUND", "inbound", actor=a)
    ledger.add_location("A-01-01", "storage", actor=a, rank=10)
    ledger.add_location("Q-01", "quarantine", actor=a)
    ledger.add_sku("MILK-1L", gtin=GTIN_A, name="Milk 1 L", actor=a)
    ledger.add_sku("TEA-500", gtin=GTIN_B, name="Tea 500 g", actor=a)
    for lot, days, loc in (
        ("A24B117", 200, "A-01-01"),
        ("A24B118", 20, "A-01-01"),
        ("A24B119", 3, "A-01-01"),
    ):
        exp = (today + timedelta(days=days)).isoformat()
        ledger.receive("MILK-1L", lot, 24, expiry=exp, location=loc, actor=a)
    ledger.receive(
        "TEA-500",
        "T-0042",
        12,
        location="Q-01",
        expiry=(today + timedelta(days=400)).isoformat(),
        actor=a,
    )
    ledger.freeze("TEA-500", "T-0042", reason="wet cartons at the gate", actor="user:qa")


def keep_sample(
    store: SampleStore, status: str, *, text: str, hold_id: str | None = None, **fields: str
) -> str:
    """Keep a sample the way the OCR reader does (a CartonRead-shaped dict + extras)."""
    read = {
        "file": None,
        "status": status,
        "gtin": fields.get("gtin"),
        "lot": fields.get("lot"),
        "expiry": None,
        "prod_date": None,
        "sscc": None,
        "text": text,
        "confidence": 0.62 if status == "REVIEW" else 0.1,
        "latency_ms": 48.0,
        "reason": None if status == "REVIEW" else "UNREADABLE: no code region found",
    }
    extra = {"hold_id": hold_id} if hold_id else {}
    sid = store.keep(crop_image(len(text), text=text[-12:] or "??????"), read, **extra)
    assert sid is not None
    return sid


def labels(env: PanelEnv) -> list[dict[str, object]]:
    """Metadata of the labeled samples in the store."""
    metas = [env.samples.load(sid)[1] for sid in env.samples.ids()]
    return [m for m in metas if m.get("label")]


def make_env(tmp_path: Path, **config: object) -> PanelEnv:
    bus = Bus()
    ledger = Ledger.open(tmp_path / "ledger.db", "edge-test", synchronous="NORMAL")
    seed_ledger(ledger)
    hold = ledger.hold_unidentified(actor="device:edge-test", location="Q-01").event.payload["lot"]
    samples = SampleStore(tmp_path / "samples", max_bytes=20 * 1024 * 1024)
    r1 = keep_sample(
        samples, "REVIEW", text="(01)0690123456789Z(10)A24B117", gtin=GTIN_A, lot="A24B117"
    )
    r2 = keep_sample(samples, "UNREADABLE", text="", hold_id=str(hold))
    cfg = PanelConfig(**config)  # type: ignore[arg-type]
    services = PanelServices(
        bus=bus,
        device=NodeDeviceProvider("edge-test", "site-01", tmp_path / "trust"),
        ledger=ledger,
        review=SampleReviewQueue(samples),
        equipment=[SyncStatusProvider(ledger, tmp_path / "sync-state.json")],
    )
    app = create_app(services, cfg, tmp_path / "panel.db", hasher=FAST_ARGON2)
    users: UserStore = app.state.users
    for name, role in USERS.items():
        users.add(name, role, PASSWORD)
    secret = users.enable_totp("root")
    return PanelEnv(app, bus, ledger, samples, r1, r2, users, secret, cfg)


def carton(i: int, status: str = "ACCEPTED", lot: str = "A24B117", **kw: object) -> CartonEvent:
    now = datetime.now(UTC) - timedelta(seconds=30 - i)
    fields = {"gtin": GTIN_A, "lot": lot, "expiry": "2027-08-31"}
    if status in ("UNREADABLE", "ERROR"):
        fields = {}
    args: dict[str, object] = dict(
        carton_id=f"c{i:04d}",
        ts=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        status=status,
        confidence={"ACCEPTED": 0.97, "REVIEW": 0.71, "UNREADABLE": 0.12}.get(status, 0.0),
        fields=fields,
        defect="ok",
        defect_score=0.03,
        signature="signed",
        agv_task=f"T-{i:04d}",
        latency_ms=40.0 + i % 7,
    )
    if "crop" not in kw:
        args["crop"] = png(i, text=lot)
    if status == "UNREADABLE":
        args["reason"] = "UNREADABLE"
    args.update(kw)
    return CartonEvent(**args)  # type: ignore[arg-type]


def publish_samples(bus: Bus) -> None:
    bus.publish(CARTON_TOPIC, carton(1))
    bus.publish(CARTON_TOPIC, carton(2, "REVIEW", lot="A24B118"))
    bus.publish(CARTON_TOPIC, carton(3, "UNREADABLE"))
    bus.publish(
        CARTON_TOPIC,
        carton(
            4,
            defect="damaged",
            defect_score=0.91,
            defect_boxes=(DefectBox(0.55, 0.2, 0.3, 0.5, "tear"),),
        ),
    )
    bus.publish(
        CARTON_TOPIC,
        carton(
            5,
            "ERROR",
            reason="IMAGE_INVALID",
            crop=None,
            signature="unsigned",
            agv_task=None,
            defect="not_run",
            defect_score=None,
        ),
    )


def totp_now(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def publish_history(bus: Bus, seed: int = 8) -> None:
    """A seeded hour of cartons: mostly accepted, some review/unreadable, varying latency."""
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    for i in range(120):
        moment = now - timedelta(minutes=59 - i * 0.49)
        status = str(rng.choice(["ACCEPTED"] * 17 + ["REVIEW", "REVIEW", "UNREADABLE"]))
        bus.publish(
            CARTON_TOPIC,
            carton(
                100 + i,
                status,
                ts=moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                latency_ms=float(38 + rng.gamma(2.0, 6.0)),
                crop=png(i, text=f"A24B{117 + i % 3}"),
            ),
        )
