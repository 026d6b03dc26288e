"""Rollout control-plane figures: N light simulated devices against the real cloud service.

The cloud runs as ``dockgate cloud serve`` in its own process (SQLite by default, or
``--database-url postgresql://...``) with its fleet CA and a signed release repository. Each
simulated device enrolls over ``/v1/enroll`` with its own key and then, as an asyncio task,
sends a signed ``POST /v1/ota/report`` heartbeat every ``poll_after_s`` the cloud answers, with
figures for the version it was told to run (it "installs" instantly: the edge's own costs are
measured by ``bench/rollout.py`` and the fleet tests). For 50, 200 and 500 devices it prints:

* good release (A -> B, canary 5 % -> 25 % -> 100 %, soak ``--soak`` s per stage, auto-promote):
  time from creating the rollout until every device is told to run B, and the same minus the
  configured soak (the cost, not the policy);
* bad release (B -> C; C's OCR-vs-scanner agreement drops): time from the moment the figures the
  canaries have sent cross the gate (computed on the device side with the same gates) until the
  cloud records the rollback, and until every device that was told C has been told B again;
  and how many non-canary devices were ever told C (must be 0);
* the cloud process: CPU seconds and peak RSS during each phase, and requests served.

A same-run reference: the median time of one report round trip with the fleet idle.
The machine is shared with other engineers; wall times are noisy, CPU seconds less so.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyotp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cloud.auth import add_user  # noqa: E402
from cloud.config import CloudConfig  # noqa: E402
from cloud.deps import Services  # noqa: E402
from cloud.rollouts.gates import GateThresholds, Verdict, evaluate  # noqa: E402
from cloud.rollouts.plan import bucket  # noqa: E402
from cloud.services.ca import init_ca  # noqa: E402
from cloud.services.registry import create_token  # noqa: E402
from edge.contracts.ota import REPORT_PATH, ModelFigures, OtaDirective, OtaReport  # noqa: E402
from edge.contracts.sync import AUTH_SCHEME  # noqa: E402
from edge.trust.enroll import build_csr  # noqa: E402
from edge.trust.keys import Identity, generate_key  # noqa: E402
from edge.trust.signer import DeviceSigner  # noqa: E402

MODEL = "defect"
A, B, C = "1.0.0", "1.1.0", "1.2.0"
PASSWORD = "bench password 1234"
PER_REPORT = 20  # cartons per heartbeat window
GATES = GateThresholds(min_observations=60, min_agreement_pairs=30)
PILOT = "edge-0000"


def tiny_model(path: Path, tag: float) -> Path:
    """A 4x4 ONNX classifier whose bytes differ per version (the cloud never runs it)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.eye(4, dtype=np.float32) * (1.0 + tag)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def build_repo(tmp: Path) -> Path:
    from ota.release import describe_model, sha256_file
    from ota.repo import Repository

    repo = Repository.init(tmp / "ota", tmp / "offline" / "root.key")
    for version, tag in ((A, 1.0), (B, 2.0), (C, 3.0)):
        model = tiny_model(tmp / "build" / version / "defect.onnx", tag)
        info = describe_model(model, MODEL, version, sha256=sha256_file(model), min_dockgate="0")
        repo.release(model, info, activate=version == A)
    return repo.dir


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the cloud process ----------------------------------------------------------------------
class Cloud:
    def __init__(self, tmp: Path, database_url: str, poll_s: float, active_s: float) -> None:
        init_ca(tmp / "ca", "org-bench")
        self.config_path = tmp / "cloud.toml"
        self.config_path.write_text(
            f'database_url = "{database_url}"\n'
            f'issuing_dir = "{tmp / "ca" / "issuing"}"\n'
            f'ota_dir = "{build_repo(tmp)}"\n'
            f"ota_poll_s = {poll_s}\nota_poll_active_s = {active_s}\n"
            "rollout_eval_s = 1.0\nclock_skew_s = 900\n"
        )
        self.config = CloudConfig(
            database_url=database_url,
            issuing_dir=tmp / "ca" / "issuing",
            ota_dir=tmp / "ota",
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe, port = Path(sys.executable).with_name("dockgate"), str(self.port)
        self.proc = subprocess.Popen(
            [str(exe), "cloud", "serve", "--config", str(self.config_path), "--port", port],
            cwd=tmp,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("cloud did not start")
        self.ps = psutil.Process(self.proc.pid)
        self.svc = Services.from_config(self.config, run_migrations=False)

    def cpu_s(self) -> float:
        procs = [self.ps, *self.ps.children(recursive=True)]
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                continue
        return total

    def rss(self) -> int:
        total = 0
        for p in [self.ps, *self.ps.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def stop(self) -> None:
        self.svc.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Meter:
    """CPU seconds and peak RSS of the cloud between start() and stop()."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud, self.peak, self._stop = cloud, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-meter")

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.cloud.rss())

    def __enter__(self) -> Meter:
        self.cpu0, self.t0 = self.cloud.cpu_s(), time.monotonic()
        self.peak = self.cloud.rss()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu = self.cloud.cpu_s() - self.cpu0
        self.wall = time.monotonic() - self.t0


# -- devices --------------------------------------------------------------------------------
@dataclass
class Sim:
    id: str
    signer: DeviceSigner
    running: str = A
    seq: int = 0
    told: dict[str, float] = field(default_factory=dict)  # version -> first time told
    told_back: float | None = None  # told B again after being told C

    def figures(self, bad_version: str | None) -> dict[str, ModelFigures]:
        pairs = PER_REPORT // 2
        agree = 0.6 if self.running == bad_version else 0.97
        fig = ModelFigures(
            observations=PER_REPORT,
            latency_p95_ms=40.0,
            mean_confidence=0.93,
            review_or_unreadable=1,
            defects=1,
            agreement_pairs=pairs,
            agreements=round(pairs * agree),
        )
        return {self.running: fig}


@dataclass
class World:
    bad_version: str | None = None
    sent: list[tuple[float, str, ModelFigures]] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    stop: bool = False


async def run_device(sim: Sim, http: httpx.AsyncClient, world: World) -> None:
    await asyncio.sleep(random.uniform(0, 2.0))
    while not world.stop:
        sim.seq += 1
        figs = sim.figures(world.bad_version)
        body = (
            OtaReport.model_validate(
                {
                    "device_id": sim.id,
                    "report_seq": sim.seq,
                    "models": [{"name": MODEL, "running": sim.running, "figures": figs}],
                }
            )
            .model_dump_json()
            .encode()
        )
        auth = f"{AUTH_SCHEME} {sim.signer.sign_request('POST', REPORT_PATH, body)}"
        sent_at = time.monotonic()  # crossing is dated when the crossing report is SENT
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        try:
            r = await http.post(REPORT_PATH, content=body, headers=headers)
            world.requests += 1
            if r.status_code != 200:
                world.errors += 1
                await asyncio.sleep(1.0)
                continue
        except httpx.HTTPError:
            world.errors += 1
            await asyncio.sleep(1.0)
            continue
        now = time.monotonic()
        for version, fig in figs.items():
            world.sent.append((sent_at, version, fig))
        directive = OtaDirective.model_validate_json(r.content)
        acting = next(a.version for a in directive.assignments if not a.shadow)
        if acting not in sim.told:
            sim.told[acting] = now
        if acting == B and C in sim.told and sim.told_back is None:
            sim.told_back = now
        sim.running = acting
        await asyncio.sleep(directive.poll_after_s * random.uniform(0.9, 1.1))


def enroll(cloud: Cloud, n: int) -> list[Sim]:
    with cloud.svc.sessions.begin() as s:
        tokens = [
            create_token(s, "bench", "org-bench", "site-01", None, dt.timedelta(hours=2))
            for _ in range(n)
        ]
    sims = []
    with httpx.Client(base_url=cloud.url, timeout=60) as http:
        for i, token in enumerate(tokens):
            device_id = f"edge-{i:04d}"
            key = generate_key()
            body = {"token": token, "device_id": device_id, "csr": build_csr(key, device_id)}
            r = http.post("/v1/enroll", json=body)
            r.raise_for_status()
            from cryptography import x509

            cert = x509.load_pem_x509_certificate(r.json()["certificate"].encode())
            chain = x509.load_pem_x509_certificates(r.json()["chain"].encode())
            sims.append(Sim(device_id, DeviceSigner(Identity(key, cert, chain))))
    return sims


def admin_session(cloud: Cloud) -> dict[str, str]:
    with cloud.svc.sessions.begin() as s:
        secret = add_user(s, "bench", "bench-admin", "admin", PASSWORD)
    body = {"username": "bench-admin", "password": PASSWORD, "totp": pyotp.TOTP(secret or "").now()}
    r = httpx.post(f"{cloud.url}/v1/auth/login", json=body, timeout=30)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def stages(soak: float) -> list[dict[str, Any]]:
    return [
        {
            "name": "canary",
            "percent": 5,
            "devices": [PILOT],  # at least one canary even in a small fleet
            "min_soak_s": soak,
            "min_observations": 60,
        },
        {"name": "25%", "percent": 25, "min_soak_s": soak, "min_observations": 60},
        {"name": "all", "percent": 100, "min_soak_s": soak, "min_observations": 60},
    ]


def create(cloud: Cloud, admin: dict[str, str], rid: str, a: str, b: str, soak: float) -> None:
    spec = {
        "id": rid,
        "model": MODEL,
        "from_version": a,
        "to_version": b,
        "stages": stages(soak),
        "gates": GATES.model_dump(),
    }
    r = httpx.post(f"{cloud.url}/v1/rollouts", json={"spec": spec}, headers=admin, timeout=30)
    r.raise_for_status()


def detail(cloud: Cloud, admin: dict[str, str], rid: str) -> dict[str, Any]:
    r = httpx.get(f"{cloud.url}/v1/rollouts/{rid}", headers=admin, timeout=30)
    r.raise_for_status()
    return dict(r.json())


def crossing(world: World, since: float, cand: str, base: str) -> float | None:
    """First time the figures sent since ``since`` make a gate fail (device-side view)."""
    totals = {cand: [0] * 8, base: [0] * 8}
    keys = ("observations", "errors", "review_or_unreadable", "defects")
    keys += ("agreement_pairs", "agreements")
    for at, version, fig in sorted(world.sent, key=lambda x: x[0]):
        if at < since or version not in totals:
            continue
        acc = totals[version]
        for i, k in enumerate(keys):
            acc[i] += getattr(fig, k)

        def mf(acc: list[int]) -> ModelFigures:
            return ModelFigures(
                **dict(zip(keys, acc[: len(keys)], strict=True)),
                latency_p95_ms=40.0,
                mean_confidence=0.93,
            )

        results = evaluate(mf(totals[cand]), mf(totals[base]), GATES)
        if any(r.verdict is Verdict.FAILED for r in results):
            return at
    return None


async def scenario(cloud: Cloud, sims: list[Sim], soak: float, timeout: float) -> dict[str, Any]:
    admin = admin_session(cloud)
    world = World()
    out: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=cloud.url, timeout=60, limits=limits) as http:
        tasks = [asyncio.create_task(run_device(s, http, world)) for s in sims]
        try:
            await asyncio.sleep(3.0)  # everyone reported once on A
            # same-run reference: one report round trip (median of 5) with the fleet running
            ref = []
            for _ in range(5):
                t0 = time.perf_counter()
                body = OtaReport(device_id=sims[0].id).model_dump_json().encode()
                sig = sims[0].signer.sign_request("POST", REPORT_PATH, body)
                await http.post(
                    REPORT_PATH, content=body, headers={"Authorization": f"{AUTH_SCHEME} {sig}"}
                )
                ref.append(time.perf_counter() - t0)
            out["report_rtt_ms"] = statistics.median(ref) * 1000
            # -- good release -----------------------------------------------------------
            with Meter(cloud) as m:
                req0 = world.requests
                t0 = time.monotonic()
                await asyncio.to_thread(create, cloud, admin, "good", A, B, soak)
                while any(B not in s.told for s in sims) and time.monotonic() - t0 < timeout:
                    await asyncio.sleep(0.1)
                t_all = time.monotonic() - t0
                while detail(cloud, admin, "good")["state"] == "running":
                    await asyncio.sleep(0.5)
                    if time.monotonic() - t0 > timeout:
                        break
                out["good_state"] = detail(cloud, admin, "good")["state"]
                out["good_requests"] = world.requests - req0
            out["good_s"], out["good_cost_s"] = t_all, t_all - 3 * soak
            out["good_cpu_s"], out["good_wall_s"], out["good_rss"] = m.cpu, m.wall, m.peak
            # -- bad release ------------------------------------------------------------
            for s in sims:
                s.told.pop(C, None)
            world.bad_version = C
            with Meter(cloud) as m:
                req0 = world.requests
                t0 = time.monotonic()
                await asyncio.to_thread(create, cloud, admin, "bad", B, C, soak)
                while detail(cloud, admin, "bad")["state"] in ("pending", "running"):
                    await asyncio.sleep(0.2)
                    if time.monotonic() - t0 > timeout:
                        break
                d = detail(cloud, admin, "bad")
                told_c = [s for s in sims if C in s.told]
                while any(s.told_back is None for s in told_c):
                    await asyncio.sleep(0.1)
                    if time.monotonic() - t0 > timeout:
                        break
                out["bad_requests"] = world.requests - req0
            first_c = min((s.told[C] for s in told_c), default=t0)
            t_cross = crossing(world, first_c, C, B)
            decision = next((x for x in d["decisions"] if x["action"] == "rollback"), None)
            out["bad_state"] = d["state"]
            out["told_c"] = len(told_c)
            out["non_canary_told_c"] = sum(
                1 for s in told_c if s.id != PILOT and bucket("bad", s.id) * 100 >= 5
            )
            if t_cross is not None and decision is not None:
                wall_at_cross = time.time() - (time.monotonic() - t_cross)
                decided = dt.datetime.fromisoformat(decision["at"]).timestamp()
                out["cross_to_decision_s"] = decided - wall_at_cross
                backs = [s.told_back for s in told_c if s.told_back is not None]
                out["cross_to_all_back_s"] = (max(backs) - t_cross) if backs else None
            out["bad_cpu_s"], out["bad_wall_s"], out["bad_rss"] = m.cpu, m.wall, m.peak
            out["errors"] = world.errors
        finally:
            world.stop = True
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, nargs="+", default=[50, 200, 500])
    ap.add_argument("--database-url", default=None, help="default: a SQLite file per run")
    ap.add_argument("--soak", type=float, default=5.0, help="soak per stage, s")
    ap.add_argument("--poll", type=float, default=15.0, help="ota_poll_s")
    ap.add_argument("--active-poll", type=float, default=5.0, help="ota_poll_active_s")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    print(
        f"cloud: dockgate cloud serve (1 worker), evaluator every 1 s, poll {args.poll} s "
        f"({args.active_poll} s under judgement), soak {args.soak} s x 3 stages, "
        f"{PER_REPORT} cartons per heartbeat; {psutil.cpu_count()} CPUs, "
        f"load {psutil.getloadavg()[0]:.1f}"
    )
    header = (
        "devices  db      to100%_s  minus_soak_s  cross->decision_s  cross->all_back_s  "
        "told_C  non-canary_C  cpu_good_s  cpu_bad_s  peak_rss_MB  req/s  rtt_ms  errors"
    )
    print(header)
    for n in args.devices:
        with tempfile.TemporaryDirectory(prefix="dg-rollout-bench-") as d:
            tmp = Path(d)
            url = args.database_url or f"sqlite:///{tmp}/cloud.db"
            if args.database_url:
                url = _fresh_schema(args.database_url)
            cloud = Cloud(tmp, url, args.poll, args.active_poll)
            try:
                sims = enroll(cloud, n)
                out = asyncio.run(scenario(cloud, sims, args.soak, args.timeout))
            finally:
                cloud.stop()
                if args.database_url:
                    _drop_schema(args.database_url, url)
        rate = (out["good_requests"] + out["bad_requests"]) / (
            out["good_wall_s"] + out["bad_wall_s"]
        )
        db = "sqlite" if not args.database_url else "pg"
        print(
            f"{n:7d}  {db:6s}  {out['good_s']:8.1f}  {out['good_cost_s']:12.1f}  "
            f"{_f(out.get('cross_to_decision_s')):>17s}  "
            f"{_f(out.get('cross_to_all_back_s')):>17s}  "
            f"{out['told_c']:6d}  {out['non_canary_told_c']:12d}  {out['good_cpu_s']:10.1f}  "
            f"{out['bad_cpu_s']:9.1f}  {max(out['good_rss'], out['bad_rss']) / 2**20:11.0f}  "
            f"{rate:5.0f}  {out['report_rtt_ms']:6.1f}  {out['errors']:6d}"
            + (
                ""
                if out["good_state"] == "completed" and out["bad_state"] == "rolled_back"
                else f"  (good {out['good_state']}, bad {out['bad_state']})"
            ),
            flush=True,
        )


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _fresh_schema(base: str) -> str:
    import uuid

    import psycopg

    schema = "bench_" + uuid.uuid4().hex[:10]
    plain = base.replace("postgresql+psycopg://", "postgresql://").split("?")[0]
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{plain}?options=-csearch_path%3D{schema}"


def _drop_schema(base: str, url: str) -> None:
    import psycopg

    plain = base.replace("postgresql+psycopg://", "postgresql://").split("?")[0]
    schema = url.rsplit("%3D", 1)[-1]
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
