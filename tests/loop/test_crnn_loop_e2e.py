"""The learning loop for the code recogniser, end to end, small: the fleet's CRNN misreads a kind
of print, a node uploads those crops, they are labelled through the labels API, a codes job
fine-tunes the production CRNN on them, the gate signs the candidate, the canary rollout starts
on its own, real devices follow it over real HTTP, their agreement with the scanner is higher on
the new version, and the rollout is promoted stage by stage until every device runs it.

**The weak production.** The shipped CRNN reads its own print well, and the kinds of print it
does misread (heavy dot dropout, measured) are not fixed by a short fine-tune. So the fleet's
production is made weak on purpose, as the defect loop's test does with its blind defect model:
the shipped CRNN with the output column of the character ``7`` zeroed in the head's weight and
its bias lowered by 4 (``weakened_crnn``). It never reads a 7 (a 7 is dropped or read as
another character): on lines that print a 7 it reads no line exactly (character error rate
0.07-0.09), and the scanner disagrees with five reads in six. It is signed as the release
``ocr.crnn`` ``crnn-weak-7`` and made the fleet default (``active``), as ``dockgate ota release
--activate`` leaves it; a device installs the shipped CRNN as its first slot (``NodeOta.restore``,
what a new device does) and then the fleet default over the air.

**Self-test threshold.** The node self-tests every CRNN it installs on the committed carton crops
(nine known fields). Four of them print a 7, so the weak production gets 3 of 9 right where the
shipped CRNN gets 7: the devices here run with ``[ota] crnn_selftest_min_accuracy = 0.3`` so that
the fleet default can be installed at all. The test of the self-test itself (a garbage CRNN
refused at the default 0.7) is in tests/ota/test_node_crnn.py.

**Steps**, each through Dockgate's own interfaces: the node reads lines that print a 7 with the
weak CRNN it runs, and its Reader keeps the REVIEW and UNREADABLE crops in the node's sample
store; the sync agent's ``SampleUploader`` sends them to ``/v1/samples`` over HTTP, signed by the
node; a labeler takes them from ``/v1/labels/queue``, looks at each image
(``/v1/samples/{id}/image``) and types the printed text (the generator's truth) into the labels
API; ``dockgate cloud dataset create`` snapshots them; ``POST /v1/training/jobs`` starts a codes
job on the in-process queue, which fine-tunes production (about 50 steps at lr 2e-3 on the
~50 labelled crops of the train split and 16 generated lines); the gate judges it on the
regression and validation splits against production, signs it into the TUF repository and,
``auto_rollout`` being on for ``ocr.crnn``, creates the canary rollout (stages 10 %, 50 %,
100 %). Each device is the real ``NodeOta`` (the CRNN holder, its self-test, the OTA agent
thread) talking to the cloud served by uvicorn; the rollout evaluator promotes on the figures
the devices report.

**The line.** Each device reads generated crops of lines that print a 7 (seeds training never
saw) through the Reader of the CRNN version it runs, reports the read to its agent
(``NodeOta.record_ocr``, ``handled``), and pairs it with what a scanner reads of that line (the
generator's fields) through the node's own rule (``edge.runtime.agreement._agrees``) and
``NodeOta.on_pair``. Every crop with scanned fields is a pair, not only ACCEPTED reads as in the
node's tracker: one printed line rarely holds all of a carton's fields, so the Reader seldom
accepts one.

**Devices.** A stage takes the devices whose hash bucket (rollout id, device id) is below its
percentage, and the rollout id names the candidate, which exists only once trained. With four
devices a 10 % canary is empty about two times in three; so the node that uploaded the samples
runs from the start, and the rest of the fleet is named once the rollout exists
(``fleet_names``): one device in the canary, one in the 50 % wave, two in the last, the
uploading node counted wherever its bucket puts it. They join as new devices do (shipped first
slot, then what the cloud assigns: the weak production, or the candidate in the canary).

**Timing.** A device reports its figures at each heartbeat (``[ota] poll_s``, 30 s at the least)
and at once when it switches version or confirms one after its 50 probation cartons; so a stage
here lasts about as long as its devices take to read 50 cartons on the candidate. The cloud asks
devices to poll every second, adds figures up per 1 s window (``ota_window_s``; with the default
60 s, figures stamped at a window's start before a stage began are left out of that stage's
count) and evaluates rollouts every half second; the stages need no soak time.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import uvicorn
from onnx import helper, numpy_helper
from sqlalchemy import select

from cloud.db.models import OtaDeviceModel
from cloud.rollouts.plan import bucket
from edge.config import EdgeConfig
from edge.runtime.agreement import COMPARED, _agrees
from edge.runtime.ota import CRNN, NodeOta
from edge.sync.client import CloudClient
from edge.sync.samples import STATE_FILE, SampleUploader
from edge.trust.signer import DeviceSigner
from edge.vision.ocr.crnn.charset import INDEX
from edge.vision.ocr.reader import CartonRead
from edge.vision.ocr.samples import SampleStore
from edge.vision.session import model_entry
from fixtures.cartons.frame import generate_crop
from tests.loop.env import LoopCloud, loop_cloud
from tests.loop.test_training import label, release_repo, start_job, wait_job
from tests.support.net import free_port

pytestmark = pytest.mark.slow

WEAK = "crnn-weak-7"  # the fleet's production: the shipped CRNN that cannot read a 7
SELFTEST_MIN = 0.3  # the weak production reads 3 of the 9 known fields (see the module doc)
UPLOADS = 96  # lines the node reads and uploads: about half train, a quarter val, regression
LINE_POOL = 40  # lines the fleet reads during the rollout (other seeds)
FINE_TUNE = {
    "lines": 16,  # generated lines of the usual look beside the ~50 labelled crops
    "val_lines": 8,
    "holdout_lines": 8,
    "epochs": 10,  # ~50 labelled + 16 generated lines: 5 batches of 16 per epoch, 50 steps
    "batch": 16,
    "lr": 2e-3,
    "compare_production": False,
    # validate once, at the end: early stopping watches generated lines of the usual look,
    # which this fine-tune is not about (the gate judges it on the labelled splits)
    "eval_every": 100_000,
}
CLOUD = {
    "training_threads": 1,
    "auto_rollout": {CRNN: True},
    "auto_rollout_soak_s": 0,
    "auto_rollout_observations": 50,
    "rollout_eval_s": 0.5,
    "ota_poll_s": 1.0,
    "ota_poll_active_s": 1.0,
    "ota_window_s": 1,
}


# -- the weak production and the print it misreads ----------------------------------------------
def weakened_crnn(path: Path, version: str = WEAK) -> Path:
    """The shipped CRNN that never reads a 7: the head's column of '7' zeroed (the head weight
    is the transposed ``[2 * hidden, classes]`` initializer of the graph's one MatMul) and its
    bias lowered by 4; ``version`` in its metadata."""
    model = onnx.load(str(model_entry(CRNN).path))
    (matmul,) = [n for n in model.graph.node if n.op_type == "MatMul"]
    inits = {i.name: i for i in model.graph.initializer}
    head = next(name for name in matmul.input if name in inits)
    seven = INDEX["7"]
    weight = numpy_helper.to_array(inits[head]).copy()
    weight[:, seven] = 0.0
    bias = numpy_helper.to_array(inits["net.head.bias"]).copy()
    bias[seven] -= 4.0
    inits[head].CopyFrom(numpy_helper.from_array(weight, head))
    inits["net.head.bias"].CopyFrom(numpy_helper.from_array(bias, "net.head.bias"))
    props = {p.key: p.value for p in model.metadata_props}
    helper.set_model_props(model, {**props, "version": version})
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def scanned(truth: dict[str, Any]) -> dict[str, str]:
    """What a scanner reads of the line: its fields the node compares."""
    return {k: str(v) for k, v in truth["fields"].items() if k in COMPARED}


def seven_lines(first_seed: int, n: int) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """``n`` line crops (BGR, 48 rows) whose scanned fields print a 7, and their truth."""
    out = []
    for seed in itertools.count(first_seed):
        crop, truth = generate_crop(seed, height=48)
        if any("7" in v for v in scanned(truth).values()):
            out.append((crop, truth))
            if len(out) == n:
                return out
    raise AssertionError("unreachable")


def ocr_fields(read: CartonRead) -> dict[str, str]:
    return {k: str(getattr(read, k)) for k in COMPARED if getattr(read, k)}


# -- devices -------------------------------------------------------------------------------------
@dataclass
class Device:
    name: str
    ota: NodeOta
    identity: Any
    samples: SampleStore | None = None
    reads: int = 0


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """The cloud app on a real uvicorn, for the devices. Its lifespan (the rollout evaluator,
    the training queue) already runs under the test client: not a second time here."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="loop-uvicorn")
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def edge_config(name: str, url: str, tmp: Path) -> EdgeConfig:
    return EdgeConfig.model_validate(
        {
            "device": {"id": name, "data_dir": str(tmp / name)},
            "ocr": {"recognizer": "crnn", "threads": 1},
            "defects": {"enabled": False},
            # a site with bandwidth to spare: the default 64 KiB/s would take a minute here
            "sync": {"cloud_url": url, "samples_max_kib_s": 100_000, "samples_batch": 50},
            "ota": {
                "enabled": True,
                "url": f"{url}/ota",
                "models": [CRNN],
                "poll_s": 30,  # the smallest heartbeat the config allows
                "crnn_selftest_min_accuracy": SELFTEST_MIN,
            },
        }
    )


def start_device(
    cloud: LoopCloud, url: str, name: str, tmp: Path, repo: Path, keep_samples: bool = False
) -> Device:
    """Enrolled, the repository's root trusted, the shipped CRNN as its first slot, its OTA
    agent running (it then installs whatever the cloud assigns)."""
    identity = cloud.enroll(name)
    config = edge_config(name, url, tmp)
    metadata = tmp / name / "ota" / "metadata"
    metadata.mkdir(parents=True)
    (metadata / "root.json").write_bytes((repo / "metadata" / "1.root.json").read_bytes())
    samples = SampleStore(tmp / name / "samples", 64 * 2**20) if keep_samples else None
    ota = NodeOta(config, samples=samples)
    assert ota.restore(CRNN).version == model_entry(CRNN).version
    ota.start_agent(DeviceSigner(identity))
    return Device(name, ota, identity, samples)


def wait_running(devices: list[Device], version: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(d.ota.ocr is not None and d.ota.ocr.running() == version for d in devices):
        assert time.monotonic() < deadline, {
            d.name: (d.ota.ocr.running(), d.ota.ocr.last_code) for d in devices if d.ota.ocr
        }
        time.sleep(0.1)


def read_line(dev: Device, crop: np.ndarray, truth: dict[str, Any]) -> CartonRead:
    """One carton on the device's line: read by the CRNN it runs (one snapshot per carton, as
    the inference stage takes it), figures to its agent, the scanner pair to that version."""
    active = dev.ota.current_ocr()
    assert active is not None
    started = time.perf_counter()
    read = active.model.reader.read(crop)
    carton = f"{dev.name}-{dev.reads}"
    dev.reads += 1
    dev.ota.handled(carton, CRNN, active.version)
    dev.ota.record_ocr(active.version, read, latency_ms=(time.perf_counter() - started) * 1000)
    scan = scanned(truth)
    if scan:
        dev.ota.on_pair(carton, _agrees(scan, ocr_fields(read)))
    return read


def fleet_names(rollout_id: str, first: str) -> list[str]:
    """Names for the rest of the fleet: with ``first`` (already running) one device in the
    10 % canary, one in the 50 % wave and two in the last, by the rollout's hash buckets."""
    want = [(0.0, 0.1), (0.1, 0.5), (0.5, 1.0), (0.5, 1.0)]

    def place(name: str) -> bool:
        b = bucket(rollout_id, name)
        for i, (lo, hi) in enumerate(want):
            if lo <= b < hi:
                want.pop(i)
                return True
        return False

    assert place(first)
    names: list[str] = []
    for k in itertools.count(2):
        name = f"dock-{k:03d}"
        if place(name):
            names.append(name)
        if not want:
            return names
    raise AssertionError("unreachable")


# -- the loop's steps ---------------------------------------------------------------------------
def upload_samples(dev: Device, url: str) -> int:
    """The node's sync agent: every sample in its store to the cloud, as it sends them."""
    assert dev.samples is not None
    client = CloudClient(url, DeviceSigner(dev.identity), timeout=30)
    try:
        uploader = SampleUploader(
            dev.samples,
            client,
            dev.name,
            dev.ota.config.device.data_dir / STATE_FILE,
            dev.ota.config.sync,
            model_version=WEAK,
        )
        while True:
            done = uploader.upload_round()
            if not done.more:
                return uploader.state.uploaded
    finally:
        client.close()


def label_queue(cloud: LoopCloud, truth_by_image: dict[str, str]) -> tuple[int, int]:
    """A labeler works through the code queue: looks at each crop and types what is printed.
    Returns (samples labelled, suggestions (the node's reads) that were already right)."""
    labeler = cloud.login("labeler")
    queue = cloud.http.get(
        "/v1/labels/queue", params={"kind": "code", "limit": 500}, headers=labeler
    )
    assert queue.status_code == 200, queue.text
    labelled = right = 0
    for sample in queue.json():
        image = cloud.http.get(f"/v1/samples/{sample['id']}/image", headers=labeler)
        assert image.status_code == 200
        text = truth_by_image[hashlib.sha256(image.content).hexdigest()]
        right += sample["suggestion"] == text
        labelled += label(cloud, sample["id"], {"kind": "code", "text": text}) == 200
    return labelled, right


def snapshot_cli(cloud: LoopCloud) -> str:
    """``dockgate cloud dataset create``: the labelled samples frozen into a dataset."""
    from click.testing import CliRunner

    from edge.cli import cli

    args = ["cloud", "dataset", "create", "--val-percent", "25", "--regression-percent", "25"]
    run = CliRunner().invoke(cli, args, env=cloud.cli_env())
    assert run.exit_code == 0, run.output
    return run.output.split()[0]


def agreement(fig: dict[str, Any]) -> float:
    return float(fig["agreements"]) / max(1, int(fig["agreement_pairs"]))


def sample_reads(node: Device, lines: list[tuple[np.ndarray, dict[str, Any]]]) -> dict[str, str]:
    """The node reads ``lines`` on its line; returns, for each crop its Reader kept as a
    sample, the image's sha256 -> the printed text (what the labeler will see on it)."""
    assert node.samples is not None
    printed: dict[str, str] = {}
    for crop, truth in lines:
        before = set(node.samples.ids())
        read_line(node, crop, truth)
        for sid in set(node.samples.ids()) - before:
            data, meta = node.samples.load(sid)
            assert meta["status"] in ("REVIEW", "UNREADABLE")
            printed[hashlib.sha256(data).hexdigest()] = truth["text"]
    return printed


def run_line(
    devices: list[Device], pool: list[Any], stop: threading.Event, faults: list[Any]
) -> None:
    """The fleet's lines, one carton per device in turn, until ``stop``."""
    try:
        for i in itertools.count():
            for k, dev in enumerate(list(devices)):
                if stop.is_set():
                    return
                crop, truth = pool[(i * 7 + k) % len(pool)]
                read_line(dev, crop, truth)
    except BaseException as exc:  # reported by the test's assertion
        faults.append(exc)


def test_misread_print_to_promoted_crnn_rollout(tmp_path: Path) -> None:
    t0 = time.monotonic()
    from ota.release import describe_model, sha256_file
    from ota.repo import Repository

    repo = release_repo(tmp_path, production_defect=False)
    weak = weakened_crnn(tmp_path / "prod" / "crnn_codes.onnx")
    info = describe_model(weak, CRNN, WEAK, sha256=sha256_file(weak), min_dockgate="0")
    Repository(repo).release(weak, info, activate=True)  # the fleet default
    uploads = seven_lines(7_000_000, UPLOADS)
    pool = seven_lines(8_000_000, LINE_POOL)  # lines training never saw
    settings = CLOUD | {"ota_dir": repo, "jobs_dir": tmp_path / "jobs"}
    devices: list[Device] = []
    faults: list[BaseException] = []
    stop = threading.Event()
    line = threading.Thread(target=run_line, args=(devices, pool, stop, faults), name="loop-line")
    with (
        loop_cloud(f"sqlite:///{tmp_path}/cloud.db", tmp_path, **settings) as cloud,
        serve(cloud.http.app) as url,
    ):
        try:
            # 1. a node on the fleet's weak production reads lines that print a 7; its Reader
            # keeps the uncertain crops, its sync agent uploads them
            node = start_device(cloud, url, "dock-001", tmp_path, repo, keep_samples=True)
            devices.append(node)
            wait_running([node], WEAK)
            printed = sample_reads(node, uploads)
            assert len(printed) >= UPLOADS * 0.9
            assert upload_samples(node, url) == len(printed)
            t_sampled = time.monotonic()

            # 2. labelled through the labels API, snapshot, a codes job fine-tunes production
            labelled, right = label_queue(cloud, printed)
            assert labelled == len(printed) and right <= labelled * 0.2  # they were misread
            ds = snapshot_cli(cloud)
            t_train = time.monotonic()
            job = wait_job(cloud, start_job(cloud, "codes", ds, FINE_TUNE), timeout=400)
            train_s = time.monotonic() - t_train
            assert job["status"] == "rolling_out", job
            figures = job["candidate"]["figures"]
            assert figures["init"] == {
                "source": "release", "file": figures["init"]["file"], "version": WEAK
            }  # fmt: skip
            assert figures["labelled_lines"] >= UPLOADS * 0.4
            splits = job["evaluation"]["splits"]
            for split in ("regression", "val"):
                row = splits[split]
                assert row["production"]["version"] == WEAK and row["candidate"]["count"] > 10
                assert row["candidate"]["exact"] > row["production"]["exact"], row
            reg = splits["regression"]
            version, rollout_id = job["version"], job["rollout_id"]

            # 3. the rest of the fleet joins; the canary installs the candidate over HTTP
            for name in fleet_names(rollout_id, node.name):
                devices.append(start_device(cloud, url, name, tmp_path, repo))
            line.start()
            deadline = time.monotonic() + 240
            while True:
                r = cloud.http.get(f"/v1/rollouts/{rollout_id}", headers=cloud.login("viewer"))
                assert r.status_code == 200, r.text
                ro = r.json()
                done = ro["state"] == "completed" and all(
                    d.ota.ocr is not None
                    and d.ota.ocr.running() == version
                    and d.ota.ocr.swapper.store.probation() is None
                    for d in devices
                )
                if done or ro["state"] in ("rolled_back", "aborted") or faults:
                    break
                assert time.monotonic() < deadline, (ro["state"], ro["stage"], ro.get("gates"))
                time.sleep(0.5)
        finally:
            stop.set()
            if line.is_alive():
                line.join(60)
            for dev in devices:
                dev.ota.stop()
        assert faults == []
        assert ro["state"] == "completed", ro["decisions"]
        assert (ro["from_version"], ro["to_version"]) == (WEAK, version)
        decided = [d for d in ro["decisions"] if d["action"] in ("promote", "complete")]
        assert [(d["action"], d["stage"]) for d in decided] == [
            ("promote", "half"), ("promote", "all"), ("complete", "all")
        ]  # fmt: skip  # a promotion is recorded under the stage it starts
        for d in decided:  # what the cloud recorded when it decided: B agrees more than A
            cand, base = d["figures"]["candidate"], d["figures"]["baseline"]
            assert cand["agreement_pairs"] >= 20 and base["agreement_pairs"] >= 20, d
            assert agreement(cand) > agreement(base), d
        with cloud.svc.sessions() as s:  # and what each device last told the cloud it runs
            rows = s.execute(select(OtaDeviceModel).where(OtaDeviceModel.model == CRNN))
            running = {row.device_id: row.running for row in rows.scalars()}
        assert running == {d.name: version for d in devices}
        lines = [
            f"loop: {len(printed)} crops uploaded and labelled ({right} suggestions right), "
            f"{figures['labelled_lines']} in training, {figures['steps']} steps, "
            f"train+gate {train_s:.0f} s; regression exact {reg['production']['exact']} -> "
            f"{reg['candidate']['exact']}, cer {reg['production']['cer']} -> "
            f"{reg['candidate']['cer']}"
        ]
        for d in decided:
            cand, base = d["figures"]["candidate"], d["figures"]["baseline"]
            lines.append(
                f"  {d['action']} {d['stage']}: agreement A {agreement(base):.3f} "
                f"({base['agreements']}/{base['agreement_pairs']}) vs B {agreement(cand):.3f} "
                f"({cand['agreements']}/{cand['agreement_pairs']})"
            )
        lines.append(
            f"  generate, read and upload {t_sampled - t0:.0f} s, "
            f"whole test {time.monotonic() - t0:.0f} s, "
            f"{len(devices)} devices, {sum(d.reads for d in devices)} reads"
        )
        print("\n" + "\n".join(lines))
