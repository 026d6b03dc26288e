"""Test PKI: a fresh fleet CA and enrolled-looking devices, generated per test (no files in git)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cloud.services.ca import Issuer, init_ca, issue_device_cert, load_issuer
from edge.contracts.event import GENESIS_HASH, Event
from edge.trust.enroll import build_csr
from edge.trust.keys import Identity, generate_key
from edge.trust.signer import DeviceSigner


def make_ca(tmp: Path, org: str = "org-01") -> Issuer:
    init_ca(tmp / "ca", org)
    return load_issuer(tmp / "ca" / "issuing")


def make_device(
    issuer: Issuer,
    device_id: str,
    site: str = "site-01",
    org: str = "org-01",
    kind: str = "ed25519",
) -> Identity:
    key = generate_key(kind)
    cert = issue_device_cert(issuer, build_csr(key, device_id), device_id, site, org)
    return Identity(key, cert, [issuer.cert, issuer.root])


def make_events(
    device_id: str, count: int, start: int = 1, prev: str = GENESIS_HASH, kind: str = "carton-read"
) -> list[Event]:
    events = []
    base = dt.datetime.now(dt.UTC)
    for seq in range(start, start + count):
        event = Event(
            id=f"00000000-0000-7000-8000-{abs(hash(device_id)) % 10**6:06d}{seq:06d}",
            device_id=device_id,
            seq=seq,
            ts=(base + dt.timedelta(milliseconds=seq)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            kind=kind,
            actor=f"device:{device_id}",
            payload={"code": f"(01)0950600013435{seq % 10}", "n": seq},
            prev_hash=prev,
        ).sealed()
        prev = event.hash
        events.append(event)
    return events


def signed(identity: Identity, events: list[Event]) -> list[str]:
    signer = DeviceSigner(identity)
    return [signer.sign_event(e.to_dict()) for e in events]
