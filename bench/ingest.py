"""Cloud ingest figures: verified events per second (SQLite, PostgreSQL) and edge catch-up time.

1. reference  raw Ed25519 verifications/s with ``cryptography`` on one core, same run, same
              envelopes: the floor of every verified event.
2. in-process the ingest service (verify, chain checks, insert, projection) on one thread.
3. HTTP       ``dockgate cloud serve --workers 2`` (one per core), D devices pushing batches
              of 500 concurrently over signed requests.
4. catch-up   an edge ledger with 10,000 pending signed events, drained by the sync agent over
              HTTP (batches of 500, two in flight) into a 2-worker cloud until it holds them all.

Medians over --repeats runs, each on a fresh database. The machine has 2 cores shared with other
work, so absolute numbers are noisy: read them against the reference measured in the same run.

    .venv/bin/python bench/ingest.py [--quick] [--no-postgres]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509

from cloud.config import CloudConfig
from cloud.deps import Services
from cloud.services.ca import init_ca
from cloud.services.ingest import ingest
from cloud.services.registry import create_token, enroll
from edge.contracts.event import GENESIS_HASH, Event
from edge.contracts.sync import SyncBatch
from edge.ledger import Ledger
from edge.sync.agent import SyncAgent
from edge.sync.client import CloudClient
from edge.sync.config import SyncConfig
from edge.sync.state import StateFile
from edge.trust.enroll import build_csr
from edge.trust.keys import Identity, generate_key
from edge.trust.signer import DeviceSigner
from tests.cloud.env import pg_schema
from tests.sync.procs import CloudProcess

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def make_envelopes(ident: Identity, device_id: str, n: int) -> list[str]:
    signer, prev, out = DeviceSigner(ident), GENESIS_HASH, []
    base = dt.datetime.now(dt.UTC)
    for seq in range(1, n + 1):
        ts = (base + dt.timedelta(milliseconds=seq)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        e = Event(
            id=f"{device_id}-{seq:08d}",
            device_id=device_id,
            seq=seq,
            ts=ts,
            kind="carton-read",
            actor=f"device:{device_id}",
            payload={"code": "(01)09506000134352(10)LOT7", "confidence": 0.98, "n": seq},
            prev_hash=prev,
        ).sealed()
        prev = e.hash
        out.append(signer.sign_event(e.to_dict(), model_version="ocr@bench"))
    return out


def reference_verify(ident: Identity, envs: list[str]) -> float:
    public = ident.cert.public_key()
    parts = [e.rsplit(".", 1) for e in envs]
    items = [(s.encode(), base64.urlsafe_b64decode(g + "==")) for s, g in parts]
    start = time.perf_counter()
    for data, sig in items:
        public.verify(sig, data)  # type: ignore[union-attr]
    return len(items) / (time.perf_counter() - start)


def enroll_devices(svc: Services, n: int, prefix: str = "edge") -> list[Identity]:
    issuer, out = svc.require_issuer(), []
    for i in range(n):
        device_id, key = f"{prefix}-{i:02d}", generate_key()
        with svc.sessions.begin() as s:
            token = create_token(s, "bench", "org-01", "site-01", None, dt.timedelta(hours=1))
            done = enroll(s, issuer, token, device_id, build_csr(key, device_id), 30)
        out.append(Identity(key, x509.load_pem_x509_certificate(done.certificate.encode()), []))
    return out


def fresh_db(stack: ExitStack, kind: str, tmp: Path, pg: str | None) -> str:
    if kind == "sqlite":
        path = Path(tempfile.mkdtemp(dir=tmp)) / "cloud.db"
        return f"sqlite:///{path}"
    assert pg is not None
    return stack.enter_context(pg_schema(pg))


def in_process(tmp: Path, kind: str, pg: str | None, n: int) -> float:
    with ExitStack() as stack:
        url = fresh_db(stack, kind, tmp, pg)
        svc = Services.from_config(CloudConfig(database_url=url, issuing_dir=tmp / "ca/issuing"))
        stack.callback(svc.close)
        ident = enroll_devices(svc, 1)[0]
        envs = make_envelopes(ident, "edge-00", n)
        start = time.perf_counter()
        for i in range(0, n, 500):
            with svc.sessions.begin() as s:
                r = ingest(s, svc.keys, SyncBatch(device_id="edge-00", envelopes=envs[i : i + 500]))
        elapsed = time.perf_counter() - start
        assert r.hwm == n, r
        return n / elapsed


def over_http(tmp: Path, kind: str, pg: str | None, devices: int, per_device: int) -> float:
    with ExitStack() as stack:
        url = fresh_db(stack, kind, tmp, pg)
        svc = Services.from_config(CloudConfig(database_url=url, issuing_dir=tmp / "ca/issuing"))
        stack.callback(svc.close)
        idents = enroll_devices(svc, devices)
        batches = [make_envelopes(i, f"edge-{n:02d}", per_device) for n, i in enumerate(idents)]
        cloud = CloudProcess(tmp, url, tmp / "ca/issuing", workers=2)
        cloud.start()
        stack.callback(cloud.stop)

        def push(pair: tuple[Identity, list[str]]) -> int:
            client = CloudClient(cloud.url, DeviceSigner(pair[0]), timeout=120)
            try:
                for i in range(0, len(pair[1]), 500):
                    hwm = client.push(pair[1][i : i + 500], None).hwm
                return hwm
            finally:
                client.close()

        start = time.perf_counter()
        with ThreadPoolExecutor(devices) as pool:
            hwms = list(pool.map(push, zip(idents, batches, strict=True)))
        elapsed = time.perf_counter() - start
        assert hwms == [per_device] * devices, hwms
        return devices * per_device / elapsed


def build_ledger(tmp: Path, ident: Identity, n: int) -> Path:
    """A ledger of cu-00 with ``n`` signed events waiting in its outbox (built once)."""
    path = tmp / "catchup-template.db"
    with Ledger.open(path, "cu-00", signer=DeviceSigner(ident), synchronous="NORMAL") as led:
        led.add_sku("SKU-A", gtin="4006381333931", actor="user:bench")
        led.add_location("A-01", "storage", rank=10, actor="user:bench")
        read = {"code": "(01)04006381333931(10)LOT1", "confidence": 0.97}
        missing = n - led.head()[0]
        with ThreadPoolExecutor(8) as pool:  # concurrent appends share commits (group commit)
            list(
                pool.map(
                    lambda _: led.record_read(
                        read, actor="device:cu-00", model_version="ocr@bench"
                    ),
                    range(missing),
                )
            )
    return path


def catch_up(
    tmp: Path,
    kind: str,
    pg: str | None,
    template: Path,
    ident: Identity,
    workers: int = 2,
    pipeline: int = 2,
) -> tuple[float, int]:
    with ExitStack() as stack:
        url = fresh_db(stack, kind, tmp, pg)
        svc = Services.from_config(CloudConfig(database_url=url, issuing_dir=tmp / "ca/issuing"))
        stack.callback(svc.close)
        with svc.sessions.begin() as s:  # register the template's certificate in this database
            from cryptography.hazmat.primitives import serialization

            from cloud.db.models import Device, DeviceCert
            from edge.contracts.envelope import cert_fingerprint

            s.add(Device(id="cu-00", site="site-01", org="org-01"))
            s.add(
                DeviceCert(
                    fingerprint=cert_fingerprint(ident.cert),
                    device_id="cu-00",
                    cert_pem=ident.cert.public_bytes(serialization.Encoding.PEM).decode(),
                    not_after=ident.cert.not_valid_after_utc,
                )
            )
        cloud = CloudProcess(tmp, url, tmp / "ca/issuing", workers=workers).start()
        stack.callback(cloud.stop)
        work = Path(tempfile.mkdtemp(dir=tmp))
        shutil.copy(template, work / "ledger.db")
        signer = DeviceSigner(ident)
        led = Ledger.open(work / "ledger.db", "cu-00", signer=signer)
        stack.callback(led.close)
        client = CloudClient(cloud.url, signer, timeout=120)
        stack.callback(client.close)
        agent = SyncAgent(
            led,
            client,
            signer,
            StateFile(work / "state.json"),
            SyncConfig(cloud_url=cloud.url, batch_size=500, pipeline=pipeline),
        )
        pending = led.outbox_stats().pending
        cloud_cpu = _tree_cpu(cloud)
        edge_cpu = time.process_time()
        start = time.perf_counter()
        agent.drain()
        elapsed = time.perf_counter() - start
        CPU.append((_tree_cpu(cloud) - cloud_cpu, time.process_time() - edge_cpu))
        assert led.outbox_stats().pending == 0 and agent.state.cloud_hwm == led.head()[0]
        return elapsed, pending


CPU: list[tuple[float, float]] = []  # (cloud, edge) CPU seconds of each catch-up run


def _tree_cpu(cloud: CloudProcess) -> float:
    """CPU seconds used so far by the cloud process and its uvicorn workers: less sensitive
    to other load on the machine than wall time."""
    import psutil

    assert cloud.proc is not None
    root = psutil.Process(cloud.proc.pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def pg_url() -> str | None:
    url = os.environ.get("DOCKGATE_TEST_POSTGRES", PG_DEFAULT)
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            return url
    except Exception as exc:  # any failure: say why and go on with SQLite
        print(f"PostgreSQL not reachable at {url} ({exc}); PostgreSQL rows skipped")
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    n = 1000 if args.quick else 4000
    devices, per_device = (2, 500) if args.quick else (4, 2000)
    catch_n = 2000 if args.quick else 10_000
    pg = None if args.no_postgres else pg_url()
    kinds = ["sqlite"] + (["postgres"] if pg else [])
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        init_ca(tmp / "ca", "org-01")
        ref_svc = Services.from_config(
            CloudConfig(database_url=f"sqlite:///{tmp}/ref.db", issuing_dir=tmp / "ca/issuing")
        )
        ident = enroll_devices(ref_svc, 1, prefix="ref")[0]
        cu_ident = enroll_devices(ref_svc, 1, prefix="cu")[0]
        ref_svc.close()
        ref_envs = make_envelopes(ident, "ref-00", 2000)
        print(f"building a ledger with {catch_n} pending events ...", flush=True)
        template = build_ledger(tmp, cu_ident, catch_n)
        refs: list[float] = []

        def with_ref(measure: Callable[[], float]) -> tuple[float, float]:
            """One measurement and its ratio to a reference taken right before it: the load
            on this shared machine changes by the minute, so ratios compare, numbers don't."""
            refs.append(reference_verify(ident, ref_envs))
            value = measure()
            return value, value / refs[-1]

        rows: list[tuple[str, str, list[tuple[float, float]]]] = []
        for kind in kinds:
            workers = 2
            rows.append(
                (
                    kind,
                    "in-process ingest, 1 thread",
                    [with_ref(lambda k=kind: in_process(tmp, k, pg, n)) for _ in range(repeats)],
                )
            )
            rows.append(
                (
                    kind,
                    f"HTTP, {workers} worker(s), {devices} devices",
                    [
                        with_ref(lambda k=kind: over_http(tmp, k, pg, devices, per_device))
                        for _ in range(repeats)
                    ],
                )
            )
        print(
            f"\nverified events per second (median of {repeats}; higher is better; 'vs ref' ="
            " median of run / raw Ed25519 verify rate measured just before that run)"
        )
        print(f"{'database':<10} {'path':<34} {'median ev/s':>12} {'best ev/s':>10} {'vs ref':>7}")
        print(
            f"{'reference':<10} {'Ed25519 verify, 1 core, per run':<34}"
            f" {statistics.median(refs):>12.0f} {max(refs):>10.0f} {1.0:>7.2f}"
        )
        for kind, what, runs in rows:
            values, ratios = [r[0] for r in runs], [r[1] for r in runs]
            print(
                f"{kind:<10} {what:<34} {statistics.median(values):>12.0f}"
                f" {max(values):>10.0f} {statistics.median(ratios):>7.2f}"
            )
        print(
            f"\ncatch-up of an edge with {catch_n} pending events (batches of 500, median of"
            f" {repeats}; goal < 10 s; 'ref s' = {catch_n} raw verifies just before)"
        )
        print(
            "('cloud CPU s' / 'edge CPU s': CPU seconds the 2 cloud workers / the edge agent used)"
        )
        print(
            f"{'database':<10} {'median s':>9} {'best s':>8} {'events/s':>9} {'ref s':>7}"
            f" {'cloud CPU s':>12} {'edge CPU s':>11}"
        )
        for kind in kinds:
            CPU.clear()
            pairs = [
                with_ref(lambda k=kind: catch_up(tmp, k, pg, template, cu_ident)[0])
                for _ in range(repeats)
            ]
            times = [t for t, _ in pairs]
            ref_s = catch_n / statistics.median(refs[-repeats:])
            med = statistics.median(times)
            cloud_cpu = statistics.median(c for c, _ in CPU)
            edge_cpu = statistics.median(e for _, e in CPU)
            print(
                f"{kind:<10} {med:>9.2f} {min(times):>8.2f} {catch_n / med:>9.0f} {ref_s:>7.2f}"
                f" {cloud_cpu:>12.2f} {edge_cpu:>11.2f}"
            )
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (2 cores, shared)")


if __name__ == "__main__":
    main()
