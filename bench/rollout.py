"""OTA distribution figures: N simulated devices fetch a signed release from the real router.

For 50, 200 and 500 devices (``--devices``), each a separate OTA directory with its own trusted
root, driven by a pool of threads (a device cycle = ngclient metadata refresh + resumable,
verified download of the active release):

* distribute: wall time from ``dockgate ota release`` of B until every device holds B verified;
* rollback: wall time from the signed rollback instruction (``activate`` A, a new higher
  targets version) until every device has verified that it must run A (A is still staged);
* the cloud side (uvicorn serving ``cloud/rollouts/router.py`` in its own process): CPU seconds
  used and peak RSS during each phase.

A same-run reference is one device's cycle alone (median of 5). Times exclude poll intervals and
soak times (configuration, not cost). The machine is shared with other engineers; wall times are
noisy, CPU seconds less so. The payload is the shipped defect model (~1.2 MB).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--workers", type=int, default=16, help="concurrent device threads")
    args = parser.parse_args()
    print(
        "| devices | 1 device alone (median of 5) | release -> all on B | server CPU | server "
        "peak RSS | rollback -> all on A | server CPU | server peak RSS |"
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
