"""Cloud ingest figures: verified events per second (SQLite, PostgreSQL) and edge catch-up time.

1. reference  raw Ed25519 verifications/s with ``cryptography`` on one core, same run, same
              envelopes: the floor of every verified event.
2. in-process the ingest service (verify, chain checks, insert, projection) on one thread.
3. HTTP       ``dockgate cloud serve --workers W``, D devices pushing batches of B envelopes
              concurrently over signed requests (W and B vary by row), after an untimed
              warm-up of a few small batches from other devices (first-request costs).
4. catch-up   an edge ledger with 10,000 pending signed events, drained by the sync agent over
              HTTP (batches of 500, two in flight) into a 2-worker cloud (already up and warm)
              until it holds them all.

Medians over --repeats runs, each on a fresh database. The machine has 2 cores shared with other
work, so absolute numbers are noisy: read them against the reference measured in the same run,
and against the CPU columns. Those give the CPU time per event of the cloud workers, of this
run's own PostgreSQL backends (found by application_name) and of the pushing devices (this
process); "CPU-bound ev/s" = 2 cores / (cloud + PostgreSQL CPU per event) is the rate the
cloud side could sustain on the 2 cores alone, which other load on the machine does not change
much (CPU time per operation still grows a little under contention).

    .venv/bin/python bench/ingest.py [--quick] [--no-postgres] [--repeats N]
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
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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
    assert isinstance(public, Ed25519PublicKey)
    parts = [e.rsplit(".", 1) for e in envs]
    items = [(s.encode(), base64.urlsafe_b64decode(g + "==")) for s, g in parts]
    start = time.perf_counter()
    for data, sig in items:
        public.verify(sig, data)
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
    url = stack.enter_context(pg_schema(pg))
    return f"{url}&application_name={APP_PREFIX}{uuid.uuid4().hex[:10]}"


def in_process(tmp: Path, kind: str, pg: str | None, n: int, batch: int = 500) -> Run:
    with ExitStack() as stack:
        url = fresh_db(stack, kind, tmp, pg)
        svc = Services.from_config(CloudConfig(database_url=url, issuing_dir=tmp / "ca/issuing"))
        stack.callback(svc.close)
        ident = enroll_devices(svc, 1)[0]
        envs = make_envelopes(ident, "edge-00", n)
        backends = PgBackends(pg, url) if kind == "postgres" else None
        cpu = time.process_time()
        start = time.perf_counter()
        for i in range(0, n, batch):
            with svc.sessions.begin() as s:
                b = SyncBatch(device_id="edge-00", envelopes=envs[i : i + batch])
                r = ingest(s, svc.keys, b)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
        pg_cpu = backends.cpu() if backends is not None else None
        assert r.hwm == n, r
        return Run(n / elapsed, cpu / n, pg_cpu / n if pg_cpu is not None else None)


@dataclass
class Run:
    """One measured run: wall rate and CPU seconds per event by side (None when unknown)."""

    rate: float
    cloud_cpu: float | None = None  # CPU s/event of the cloud processes (all workers)
    pg_cpu: float | None = None  # CPU s/event of this run's PostgreSQL backends
    client_cpu: float | None = None  # CPU s/event of the pushing devices (this process)

    @property
    def cpu_bound(self) -> float | None:
        """Events/s the cloud side could do on the machine's 2 cores with nothing else."""
        if self.cloud_cpu is None:
            return None
        return 2.0 / (self.cloud_cpu + (self.pg_cpu or 0.0))


def over_http(
    tmp: Path,
    kind: str,
    pg: str | None,
    devices: int,
    per_device: int,
    workers: int = 2,
    batch: int = 500,
) -> Run:
    with ExitStack() as stack:
        url = fresh_db(stack, kind, tmp, pg)
        svc = Services.from_config(CloudConfig(database_url=url, issuing_dir=tmp / "ca/issuing"))
        stack.callback(svc.close)
        idents = enroll_devices(svc, devices)
        batches = [make_envelopes(i, f"edge-{n:02d}", per_device) for n, i in enumerate(idents)]
        warm = enroll_devices(svc, 2 * workers, prefix="warm")
        cloud = CloudProcess(tmp, url, tmp / "ca/issuing", workers=workers)
        cloud.start()
        stack.callback(cloud.stop)
        _warm_up(cloud, warm)

        def push(pair: tuple[Identity, list[str]]) -> int:
            client = CloudClient(cloud.url, DeviceSigner(pair[0]), timeout=120)
            try:
                for i in range(0, len(pair[1]), batch):
                    hwm = client.push(pair[1][i : i + batch], None).hwm
                return hwm
            finally:
                client.close()

        backends = PgBackends(pg, url) if kind == "postgres" else None
        cloud_cpu, client_cpu = _tree_cpu(cloud), time.process_time()
        start = time.perf_counter()
        with ThreadPoolExecutor(devices) as pool:
            hwms = list(pool.map(push, zip(idents, batches, strict=True)))
        elapsed = time.perf_counter() - start
        n = devices * per_device
        cloud_cpu, client_cpu = _tree_cpu(cloud) - cloud_cpu, time.process_time() - client_cpu
        pg_cpu = backends.cpu() if backends is not None else None
        assert hwms == [per_device] * devices, hwms
        return Run(
            n / elapsed,
            cloud_cpu / n,
            pg_cpu / n if pg_cpu is not None else None,
            client_cpu / n,
        )


def _warm_up(cloud: CloudProcess, idents: list[Identity]) -> None:
    """Untimed: a few small batches from other devices, concurrently, so that every worker has
    imported, connected and compiled its statements before the clock starts (a running cloud
    has; the first request of a fresh worker costs ~0.1-0.3 CPU s)."""

    def push(n_ident: tuple[int, Identity]) -> None:
        n, ident = n_ident
        envs = make_envelopes(ident, f"warm-{n:02d}", 20)
        client = CloudClient(cloud.url, DeviceSigner(ident), timeout=120)
        try:
            for i in range(0, 20, 10):
                client.push(envs[i : i + 10], None)
        finally:
            client.close()

    with ThreadPoolExecutor(len(idents)) as pool:
        list(pool.map(push, enumerate(idents)))


APP_PREFIX = "dgbench-"


class PgBackends:
    """CPU seconds of the PostgreSQL backends serving one database URL (by application_name),
    counted from construction: the server's CPU share of ingest, apart from other users."""

    def __init__(self, admin_url: str | None, url: str) -> None:
        self.admin_url, self.app = admin_url, url.rsplit("application_name=", 1)[1]
        self.start = {pid: _pid_cpu(pid) for pid in self._pids()}

    def _pids(self) -> list[int]:
        import psycopg

        assert self.admin_url is not None
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.app,)
            ).fetchall()
        return [int(r[0]) for r in rows]

    def cpu(self) -> float | None:
        pids = self._pids()
        if not pids:
            return None
        return sum(_pid_cpu(p) - self.start.get(p, 0.0) for p in pids)


def _pid_cpu(pid: int) -> float:
    import psutil

    try:
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return 0.0


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
        warm = enroll_devices(svc, 2 * workers, prefix="warm")
        cloud = CloudProcess(tmp, url, tmp / "ca/issuing", workers=workers).start()
        stack.callback(cloud.stop)
        _warm_up(cloud, warm)  # the cloud was up before this edge came back online
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


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e6:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--no-catch-up", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    n = 1000 if args.quick else 4000
    devices, per_device = (2, 500) if args.quick else (8, 1500)
    catch_n = 2000 if args.quick else 10_000
    pg = None if args.no_postgres else pg_url()
    kinds = ([] if args.no_sqlite else ["sqlite"]) + (["postgres"] if pg else [])
    # (workers, batch size) of the HTTP rows; SQLite has one writer, so only the default there
    http_rows = {"sqlite": [(2, 500)], "postgres": [(2, 500), (2, 1000), (4, 500)]}
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
        if not args.no_catch_up:
            print(f"building a ledger with {catch_n} pending events ...", flush=True)
            template = build_ledger(tmp, cu_ident, catch_n)
        refs: list[float] = []
        ref_cpu: list[float] = []

        def with_ref(measure: Callable[[], Run]) -> tuple[Run, float]:
            """One measurement and its ratio to a reference taken right before it: the load
            on this shared machine changes by the minute, so ratios compare, numbers don't."""
            cpu = time.process_time()
            refs.append(reference_verify(ident, ref_envs))
            ref_cpu.append((time.process_time() - cpu) / len(ref_envs))
            run = measure()
            print(f"  ... {run.rate:.0f} ev/s (load {os.getloadavg()[0]:.1f})", flush=True)
            return run, run.rate / refs[-1]

        rows: list[tuple[str, str, int, list[tuple[Run, float]]]] = []
        for kind in kinds:
            print(f"{kind}: in-process", flush=True)
            rows.append(
                (
                    kind,
                    "in-process ingest, 1 thread",
                    500,
                    [with_ref(partial(in_process, tmp, kind, pg, n)) for _ in range(repeats)],
                )
            )
            for workers, size in http_rows[kind]:
                print(f"{kind}: HTTP {workers} workers, batches of {size}", flush=True)
                http = partial(over_http, tmp, kind, pg, devices, per_device, workers, size)
                rows.append(
                    (
                        kind,
                        f"HTTP, {workers} workers, {devices} devices",
                        size,
                        [with_ref(http) for _ in range(repeats)],
                    )
                )
        print(
            f"\nverified events per second into the cloud (median of {repeats}; 'vs ref' = median"
            " of run / raw Ed25519 verify rate measured just before that run; CPU columns:"
            " microseconds of CPU per event, median)"
        )
        print(
            f"{'database':<10} {'path':<30} {'batch':>5} {'median ev/s':>11} {'best':>6}"
            f" {'vs ref':>6} {'cloud CPU':>9} {'PG CPU':>6} {'devices':>7} {'CPU-bound ev/s':>14}"
        )
        print(
            f"{'reference':<10} {'Ed25519 verify, 1 core':<30} {'-':>5}"
            f" {statistics.median(refs):>11.0f} {max(refs):>6.0f} {1.0:>6.2f}"
            f" {_us(statistics.median(ref_cpu)):>9} {'-':>6} {'-':>7}"
            f" {2.0 / statistics.median(ref_cpu):>14.0f}"
        )

        def med(values: list[float | None]) -> float | None:
            known = [v for v in values if v is not None]
            return statistics.median(known) if known else None

        for kind, what, size, runs in rows:
            rates, ratios = [r.rate for r, _ in runs], [q for _, q in runs]
            bound = med([r.cpu_bound for r, _ in runs])
            print(
                f"{kind:<10} {what:<30} {size:>5} {statistics.median(rates):>11.0f}"
                f" {max(rates):>6.0f} {statistics.median(ratios):>6.2f}"
                f" {_us(med([r.cloud_cpu for r, _ in runs])):>9}"
                f" {_us(med([r.pg_cpu for r, _ in runs])):>6}"
                f" {_us(med([r.client_cpu for r, _ in runs])):>7}"
                f" {'-' if bound is None else f'{bound:.0f}':>14}"
            )
        if not args.no_catch_up:
            _catch_up_table(tmp, kinds, pg, template, cu_ident, catch_n, repeats, with_ref)
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (2 cores, shared)")


def _catch_up_run(
    tmp: Path, kind: str, pg: str | None, template: Path, ident: Identity, catch_n: int
) -> Run:
    return Run(catch_n / catch_up(tmp, kind, pg, template, ident)[0])


def _catch_up_table(
    tmp: Path,
    kinds: list[str],
    pg: str | None,
    template: Path,
    ident: Identity,
    catch_n: int,
    repeats: int,
    with_ref: Callable[[Callable[[], Run]], tuple[Run, float]],
) -> None:
    results: dict[str, list[Run]] = {}
    for kind in kinds:
        print(f"{kind}: catch-up of {catch_n}", flush=True)
        CPU.clear()
        results[kind] = []
        for _ in range(repeats):
            run, _ = with_ref(partial(_catch_up_run, tmp, kind, pg, template, ident, catch_n))
            results[kind].append(run)
        results[kind + "/cpu"] = [Run(0.0, c, None, e) for c, e in CPU]
    print(
        f"\ncatch-up of an edge with {catch_n} pending events (batches of 500, 2 in flight,"
        f" 2 cloud workers; median of {repeats}; goal < 10 s)"
    )
    print("('cloud CPU s' / 'edge CPU s': CPU seconds the 2 cloud workers / the edge agent used)")
    print(
        f"{'database':<10} {'median s':>9} {'best s':>8} {'events/s':>9} {'cloud CPU s':>12}"
        f" {'edge CPU s':>11}"
    )
    for kind in kinds:
        times = [catch_n / r.rate for r in results[kind]]
        cpu = results[kind + "/cpu"]
        med = statistics.median(times)
        print(
            f"{kind:<10} {med:>9.2f} {min(times):>8.2f} {catch_n / med:>9.0f}"
            f" {statistics.median(r.cloud_cpu or 0.0 for r in cpu):>12.2f}"
            f" {statistics.median(r.client_cpu or 0.0 for r in cpu):>11.2f}"
        )


if __name__ == "__main__":
    main()
