"""Two cloud processes on one PostgreSQL, many devices syncing at once, same batches to both.

Per-device chain checks must hold across processes (row lock on the device), so the database
ends with every event exactly once, contiguous and linked, and nothing quarantined.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cloud.config import CloudConfig
from cloud.db.models import Device, EventRow, Quarantine
from cloud.deps import Services
from cloud.services.ca import init_ca
from cloud.services.registry import create_token, enroll
from edge.contracts.event import GENESIS_HASH
from edge.sync.client import CloudClient
from edge.trust.enroll import build_csr
from edge.trust.keys import Identity, generate_key
from edge.trust.signer import DeviceSigner
from tests.cloud.env import pg_schema
from tests.sync.procs import CloudProcess
from tests.trust.pki import make_events

DEVICES, EVENTS, BATCH = 12, 60, 10


def _enroll_all(svc: Services) -> list[Identity]:
    from cryptography import x509

    out = []
    issuer = svc.require_issuer()
    for n in range(DEVICES):
        device_id = f"edge-{n:02d}"
        key = generate_key()
        with svc.sessions.begin() as s:
            token = create_token(s, "test", "org-01", "site-01", None, dt.timedelta(hours=1))
            done = enroll(s, issuer, token, device_id, build_csr(key, device_id), 30)
        out.append(Identity(key, x509.load_pem_x509_certificate(done.certificate.encode()), []))
    return out


def _sync_device(ident: Identity, urls: list[str]) -> int:
    signer = DeviceSigner(ident)
    envs = [signer.sign_event(e.to_dict()) for e in make_events(signer.device_id, EVENTS)]
    clients = [CloudClient(u, signer, timeout=60) for u in urls]
    try:
        with ThreadPoolExecutor(2) as pool:
            for start in range(0, EVENTS, BATCH):
                batch = envs[start : start + BATCH]
                # the same batch to both processes at the same moment
                results = list(pool.map(lambda c, b=batch: c.push(b, None), clients))
                assert all(not r.rejected for r in results), results
                assert max(r.hwm for r in results) == start + len(batch)
        # a stale, overlapping resend to one and a gap batch to the other
        gap = clients[0].push(envs[:5], None)
        assert gap.hwm == EVENTS and gap.duplicates == 5
        return max(r.hwm for r in results)
    finally:
        for c in clients:
            c.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_two_processes_one_postgres(postgres_url: str, tmp_path: Path) -> None:
    init_ca(tmp_path / "ca", "org-01")
    with pg_schema(postgres_url) as url:
        config = CloudConfig(database_url=url, issuing_dir=tmp_path / "ca" / "issuing")
        svc = Services.from_config(config)
        idents = _enroll_all(svc)
        clouds = [CloudProcess(tmp_path, url, config.issuing_dir).start() for _ in range(2)]
        try:
            urls = [c.url for c in clouds]
            with ThreadPoolExecutor(DEVICES) as pool:
                hwms = list(pool.map(lambda i: _sync_device(i, urls), idents))
        finally:
            for c in clouds:
                c.stop()
        try:
            assert hwms == [EVENTS] * DEVICES
            with svc.sessions() as s:
                assert not s.execute(select(Quarantine)).scalars().all()
                total = s.scalar(select(func.count()).select_from(EventRow))
                assert total == DEVICES * EVENTS
                for dev in s.execute(select(Device)).scalars():
                    rows = s.execute(
                        select(EventRow.seq, EventRow.prev_hash, EventRow.hash)
                        .where(EventRow.device_id == dev.id)
                        .order_by(EventRow.seq)
                    ).all()
                    assert [r[0] for r in rows] == list(range(1, EVENTS + 1))
                    prev = GENESIS_HASH
                    for _, prev_hash, h in rows:
                        assert prev_hash == prev
                        prev = h
                    assert dev.hwm_seq == EVENTS and dev.head_hash == prev
        finally:
            svc.close()
