"""OTA rollout figures for 50, 200 and 500 simulated devices (``--devices``).

``--part fleet``: full rollouts. The real cloud service runs in its own process (``dockgate
cloud serve``: SQLite file by default, ``--database-url`` for PostgreSQL) with its rollout
evaluator; every simulated device is the real edge OTA agent (TUF client, slot store, swapper,
signed cloud link) around a fake carton stream with real ONNX inference (``fixtures/fleet.py``),
all devices in this one process. Printed per fleet size: time until every device runs A (first
install), time from creating a good rollout (canary 10 % -> 50 % -> 100 %, soak 0 s, each stage
needing ``--min-observations`` cartons of B) until every device runs B, time from starting a bad
rollout to the cloud's rollback decision and from that decision until every canary that ran
the bad release is back, and the cloud process's CPU seconds and peak RSS per phase.

``--part distribution``: TUF distribution only. N devices (a pool of threads) fetch a signed
release from the TUF router in its own uvicorn process: release -> every device verified on B,
signed rollback -> every device on A, server CPU seconds and peak RSS, one device alone as the
same-run reference (median of 5). The payload is the shipped defect model (~1.2 MB).

The machine is shared with other engineers; wall times are noisy, CPU seconds less so.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ota.fetch import OtaClient, install_root  # noqa: E402
from ota.release import describe_model, sha256_file  # noqa: E402
from ota.repo import Repository  # noqa: E402

SERVER = """
import sys, uvicorn
from fastapi import FastAPI
from cloud.rollouts.router import router
app = FastAPI(); app.state.ota_dir = sys.argv[1]; app.include_router(router)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(repo_dir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(repo_dir), str(port)], cwd=REPO)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/ota/metadata/timestamp.json", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


class Meter:
    """CPU seconds and peak RSS of the server process over one phase."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0

    def cpu(self) -> float:
        t = self.proc.cpu_times()
        return float(t.user + t.system)

    def sample(self) -> None:
        self.peak = max(self.peak, self.proc.memory_info().rss)


def run_fleet(clients: list[OtaClient], want: str, meter: Meter, workers: int) -> float:
    def cycle(client: OtaClient) -> None:
        client._updater = None  # a fresh poll, as the next timer tick would do
        model = client.fetch("defect")
        assert model.version == want, model.version

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(cycle, c) for c in clients]
        while not all(f.done() for f in futures):
            meter.sample()
            time.sleep(0.05)
        for f in futures:
            f.result()
    return time.perf_counter() - start


def release(repo: Repository, model: Path, version: str) -> None:
    info = describe_model(model, "defect", version, sha256=sha256_file(model), min_dockgate="0")
    repo.release(model, info)


def measure(devices: int, workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        root = Path(tmp)
        repo = Repository.init(root / "repo", root / "offline" / "root.key")
        model_a = root / "a" / "defect.onnx"
        model_b = root / "b" / "defect.onnx"
        model_a.parent.mkdir()
        model_b.parent.mkdir()
        shutil.copy(REPO / "models" / "defect" / "defect.onnx", model_a)
        # B: same network, other bytes (a trailing metadata entry changes the file's hash).
        import onnx

        m = onnx.load(str(model_a))
        onnx.helper.set_model_props(m, {"version": "bench-b"})
        onnx.save(m, str(model_b))
        release(repo, model_a, "1.0.0")
        port = free_port()
        server = start_server(repo.dir, port)
        clients: list[OtaClient] = []
        try:
            url = f"http://127.0.0.1:{port}/ota"
            root_json = (repo.metadata_dir / "1.root.json").read_bytes()
            for i in range(devices):
                ota_dir = root / "dev" / f"edge-{i:03d}"
                install_root(ota_dir, root_json)
                clients.append(OtaClient(url, ota_dir))
            meter = Meter(server.pid)
            run_fleet(clients, "1.0.0", meter, workers)  # everyone starts on A

            ref = []
            for i in range(5):
                solo = root / "solo" / str(i)
                install_root(solo, root_json)
                t0 = time.perf_counter()
                OtaClient(url, solo).fetch("defect")
                ref.append(time.perf_counter() - t0)

            release(repo, model_b, "1.1.0")
            meter = Meter(server.pid)
            cpu0 = meter.cpu()
            distribute = run_fleet(clients, "1.1.0", meter, workers)
            cpu_dist, peak_dist = meter.cpu() - cpu0, meter.peak

            repo.activate("defect", "1.0.0")
            meter = Meter(server.pid)
            cpu0 = meter.cpu()
            rollback = run_fleet(clients, "1.0.0", meter, workers)
            cpu_back, peak_back = meter.cpu() - cpu0, meter.peak
        finally:
            for client in clients:
                client.close()
            server.terminate()
            server.wait(10)
    return {
        "devices": devices,
        "ref_one_device_s": statistics.median(ref),
        "distribute_s": distribute,
        "distribute_cpu_s": cpu_dist,
        "distribute_rss_mb": peak_dist / 2**20,
        "rollback_s": rollback,
        "rollback_cpu_s": cpu_back,
        "rollback_rss_mb": peak_back / 2**20,
    }


def fleet_rollout(devices: int, args: argparse.Namespace) -> dict[str, float]:
    """Full rollouts with the real cloud process and ``devices`` simulated edge devices (the real
    OTA agent each, see ``fixtures/fleet.py``): a good release canary 10 % -> 50 % -> 100 % and a
    bad one rolled back by the agreement gate. Soak times are 0 and each stage needs
    ``--min-observations`` cartons of B: the times are the system's reaction, not configuration."""
    from cloud.rollouts.plan import bucket
    from fixtures.fleet import fleet_cloud, running_fleet

    gates = {"max_latency_p95_ratio": 10.0, "min_observations": 100, "min_agreement_pairs": 50}
    obs = args.min_observations

    def spec(rid: str, frm: str, to: str, stages: list[dict[str, object]]) -> dict[str, object]:
        return {
            "id": rid,
            "model": "defect",
            "from_version": frm,
            "to_version": to,
            "stages": stages,
            "gates": gates,
        }

    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        root = Path(tmp)
        with (
            fleet_cloud(
                root / "cloud", args.database_url, poll_s=args.poll_s, eval_s=args.eval_s
            ) as cloud,
            running_fleet(
                cloud,
                root,
                devices,
                heartbeat_s=args.heartbeat_s,
                carton_rate=args.carton_rate,
                workers=args.workers,
            ) as fleet,
        ):
            t0 = time.perf_counter()
            fleet.wait_until("all on A", lambda: fleet.on("1.0.0"), 900, poll_s=0.5)
            first_install = time.perf_counter() - t0
            peak = [0]
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    peak[0] = max(peak[0], cloud.cpu_rss()[1])
                    stop.wait(0.2)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                cloud.release("1.1.0", "good")
                cpu0 = cloud.cpu_rss()[0]
                t0 = time.perf_counter()
                cloud.start_rollout(
                    spec(
                        "good",
                        "1.0.0",
                        "1.1.0",
                        [
                            {
                                "name": "canary",
                                "percent": 10,
                                "min_soak_s": 0,
                                "min_observations": obs,
                            },
                            {
                                "name": "half",
                                "percent": 50,
                                "min_soak_s": 0,
                                "min_observations": obs,
                            },
                            {
                                "name": "all",
                                "percent": 100,
                                "min_soak_s": 0,
                                "min_observations": obs,
                            },
                        ],
                    )
                )
                fleet.wait_until(
                    "good release on 100 %",
                    lambda: fleet.on("1.1.0") and cloud.rollout("good")["state"] == "completed",
                    1800,
                    poll_s=0.5,
                )
                to_full = time.perf_counter() - t0
                cpu_good = cloud.cpu_rss()[0] - cpu0
                peak_good, peak[0] = peak[0], 0

                cloud.release("1.2.0-bad", "bad")
                cpu0 = cloud.cpu_rss()[0]
                sim0, wall0 = own_cpu(), time.perf_counter()
                cloud.start_rollout(
                    spec(
                        "bad",
                        "1.1.0",
                        "1.2.0-bad",
                        [
                            {
                                "name": "canary",
                                "percent": 10,
                                "min_soak_s": 3600,
                                "min_observations": obs,
                            },
                            {"name": "all", "percent": 100},
                        ],
                    )
                )
                canaries = [d for d in fleet.devices if bucket("bad", d.id) * 100 < 10]
                fleet.wait_until(
                    "rolled back",
                    lambda: cloud.rollout("bad")["state"] == "rolled_back",
                    1800,
                    poll_s=0.5,
                )
                fleet.wait_until("canaries back", lambda: fleet.on("1.1.0"), 600, poll_s=0.2)
                detail = cloud.rollout("bad")
                decided = next(d for d in detail["decisions"] if d["action"] == "rollback")
                decided_at = datetime.fromisoformat(decided["at"]).timestamp()
                started_at = datetime.fromisoformat(detail["start_at"]).timestamp()
                backs = [
                    next(t for t, v in reversed(d.running_log) if v == "1.1.0") - decided_at
                    for d in canaries
                    if "1.2.0-bad" in [v for _, v in d.running_log]
                ]
                cpu_bad = cloud.cpu_rss()[0] - cpu0
                sim_share = (own_cpu() - sim0) / (time.perf_counter() - wall0)
                peak_bad = peak[0]
                faults = fleet.faults()
                if faults:
                    raise RuntimeError(f"simulator faults: {faults[:5]}")
            finally:
                stop.set()
                sampler.join(5)
    return {
        "devices": devices,
        "first_install_s": first_install,
        "to_full_s": to_full,
        "good_cpu_s": cpu_good,
        "good_rss_mb": peak_good / 2**20,
        "decision_s": decided_at - started_at,
        "rollback_max_s": max(backs) if backs else float("nan"),
        "rollback_median_s": statistics.median(backs) if backs else float("nan"),
        "canaries_on_bad": len(backs),
        "bad_cpu_s": cpu_bad,
        "bad_rss_mb": peak_bad / 2**20,
        "sim_cores": sim_share,
    }


def own_cpu() -> float:
    """CPU seconds of this process (the simulated devices), to show when it is the bottleneck."""
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--workers", type=int, default=16, help="concurrent device threads")
    parser.add_argument(
        "--part",
        choices=["fleet", "distribution", "both"],
        default="both",
        help="fleet: full rollouts against the cloud; distribution: TUF downloads only",
    )
    parser.add_argument("--database-url", default=None, help="cloud DB (default: SQLite file)")
    parser.add_argument("--heartbeat-s", type=float, default=5.0, help="device report period")
    parser.add_argument("--poll-s", type=float, default=1.0, help="cloud's ota_poll_s")
    parser.add_argument("--eval-s", type=float, default=1.0, help="cloud's rollout_eval_s")
    parser.add_argument("--carton-rate", type=float, default=2.0, help="cartons/s per device")
    parser.add_argument("--min-observations", type=int, default=300, help="B cartons per stage")
    args = parser.parse_args()
    if args.part in ("fleet", "both"):
        print(
            f"Full rollouts, real cloud process ({args.database_url or 'SQLite'}), simulated "
            f"devices: report every {args.heartbeat_s:g} s, assignment poll {args.poll_s:g} s, "
            f"evaluator every {args.eval_s:g} s, {args.carton_rate:g} cartons/s per device, "
            f"soak 0 s, {args.min_observations} B cartons per stage\n"
        )
        print(
            "| devices | all on A (first install) | good release -> 100 % | cloud CPU | cloud "
            "peak RSS | bad release: start -> rollback decision | decision -> every canary "
            "back (max / median) | cloud CPU | cloud peak RSS | simulator CPU (cores busy) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for n in args.devices:
            r = fleet_rollout(n, args)
            print(
                f"| {n} | {r['first_install_s']:.1f} s | {r['to_full_s']:.1f} s | "
                f"{r['good_cpu_s']:.1f} s | {r['good_rss_mb']:.0f} MB | "
                f"{r['decision_s']:.1f} s | {r['rollback_max_s']:.1f} s / "
                f"{r['rollback_median_s']:.1f} s ({r['canaries_on_bad']} canaries) | "
                f"{r['bad_cpu_s']:.1f} s | {r['bad_rss_mb']:.0f} MB | {r['sim_cores']:.2f} |",
                flush=True,
            )
        print()
    if args.part in ("distribution", "both"):
        print(
            "| devices | 1 device alone (median of 5) | release -> all on B | server CPU | "
            "server peak RSS | rollback -> all on A | server CPU | server peak RSS |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for n in args.devices:
            r = measure(n, args.workers)
            print(
                f"| {n} | {r['ref_one_device_s']:.3f} s | {r['distribute_s']:.2f} s | "
                f"{r['distribute_cpu_s']:.2f} s | {r['distribute_rss_mb']:.0f} MB | "
                f"{r['rollback_s']:.2f} s | {r['rollback_cpu_s']:.2f} s | "
                f"{r['rollback_rss_mb']:.0f} MB |",
                flush=True,
            )
    print(
        f"\n{args.workers} device threads in one client process; the machine has 2 shared cores "
        "(other engineers' jobs run too): wall times are noisy, CPU seconds less so."
    )


if __name__ == "__main__":
    main()
