"""The node's CRNN over the air: config, first install, self-test, switch between cartons,
rollback, agreement by carton, and a real rollout followed by the real agent over real HTTP.

The CRNN versions here are the shipped network (models/ocr/crnn) in other bytes: B is the same
graph with one more metadata entry; the garbage version is the same graph whose output columns
are permuted (every character read as another one), with the contract's metadata intact, so it
loads, runs and reads nothing right.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edge.camera.frame import Frame
from edge.config import EdgeConfig, load_edge_config
from edge.contracts.errors import DockgateError, ErrorCode
from edge.runtime.carton import CartonFrames, Trigger
from edge.runtime.ota import CRNN, DEFECT, NodeOta
from edge.runtime.stages import Inference
from edge.vision.image import read_image
from edge.vision.session import model_entry
from ota.fetch import VerifiedModel
from ota.release import sha256_file

CARTONS = Path(__file__).resolve().parents[2] / "fixtures" / "samples" / "cartons"


# -- models ------------------------------------------------------------------------------------
def crnn_variant(path: Path, tag: str, *, garbage: bool = False) -> Path:
    """The shipped CRNN with other bytes (``tag`` in its metadata); ``garbage`` permutes its
    output classes (a seeded derangement: no character keeps its column, blank included)."""
    model = onnx.load(str(model_entry(CRNN).path))
    props = {p.key: p.value for p in model.metadata_props}
    if garbage:
        out = model.graph.output[0]
        classes = out.type.tensor_type.shape.dim[-1].dim_value
        rng = np.random.default_rng(11)
        perm = np.roll(rng.permutation(classes), 1)
        while np.any(perm == np.arange(classes)):
            perm = np.roll(perm, 1)
        raw = out.name + "_raw"
        for node in model.graph.node:
            node.output[:] = [raw if o == out.name else o for o in node.output]
        model.graph.initializer.append(numpy_helper.from_array(perm.astype(np.int64), "perm"))
        model.graph.node.append(helper.make_node("Gather", [raw, "perm"], [out.name], axis=2))
    helper.set_model_props(model, {**props, "ota-test": tag})
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def verified(path: Path, version: str) -> VerifiedModel:
    return VerifiedModel(CRNN, version, path, sha256_file(path), path.stat().st_size, {})


def node_config(tmp: Path, **ota: Any) -> EdgeConfig:
    return EdgeConfig.model_validate(
        {
            "device": {"id": "node-01", "data_dir": str(tmp / "data")},
            "ocr": {"recognizer": "crnn", "threads": 1},
            "defects": {"enabled": False},
            "ota": {"enabled": True, "url": "http://127.0.0.1:9/ota", "models": [CRNN], **ota},
        }
    )


def cartons(n: int) -> list[CartonFrames]:
    """Cartons of one committed frame each (the sample set's frames, in turn)."""
    images = [read_image(p) for p in sorted((CARTONS / "frames").glob("*.jpg"))[:6]]
    return [
        CartonFrames(
            f"c{i:04d}",
            (Frame(images[i % len(images)], i, time.monotonic(), "t"),),
            Trigger.FILE,
            time.monotonic(),
        )
        for i in range(n)
    ]


# -- config ------------------------------------------------------------------------------------
def test_ppocr_with_a_managed_crnn_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.toml"
    cfg.write_text('[ota]\nenabled = true\nurl = "http://h/ota"\nmodels = ["defect", "ocr.crnn"]\n')
    with pytest.raises(DockgateError) as err:
        load_edge_config(cfg)
    assert err.value.code is ErrorCode.CONFIG_INVALID
    assert "ocr.recognizer" in err.value.message and "ota.models" in err.value.message
    cfg.write_text('[ocr]\nrecognizer = "cascade"\n[ota]\nmodels = ["defect", "ocr.crnn"]\n')
    assert load_edge_config(cfg).ota.models == ["defect", "ocr.crnn"]
    cfg.write_text('[ocr]\nrecognizer = "crnn"\n[ota]\nmodels = ["crnn"]\n')  # not its name
    with pytest.raises(DockgateError) as err:
        load_edge_config(cfg)
    assert err.value.code is ErrorCode.CONFIG_INVALID and "ota.models" in err.value.message


# -- install, self-test, switch, rollback --------------------------------------------------------
def test_first_install_is_the_shipped_crnn_and_a_restart_restores_it(tmp_path: Path) -> None:
    ota = NodeOta(node_config(tmp_path))
    assert set(ota.models()) == {CRNN}  # defects off: the defect model is not managed
    first = ota.restore(CRNN)
    entry = model_entry(CRNN)
    assert (first.version, first.slot.sha256) == (entry.version, entry.sha256)
    state = json.loads((tmp_path / "data/ota/models/ocr.crnn/state.json").read_text())
    assert state["active"]["version"] == entry.version
    current = ota.current_ocr()
    assert current is not None and current.model.reader.recognizer is not None
    read = current.model.reader.read(read_image(CARTONS / "crops/c00_0000.jpg"))
    assert read.lot == "DH2102Z"  # the Reader on the installed CRNN reads
    again = NodeOta(node_config(tmp_path)).restore(CRNN)  # a restart: the slot, not the image
    assert again.slot == first.slot
    with pytest.raises(DockgateError):
        ota.restore(DEFECT)


def test_garbage_crnn_fails_its_self_test_and_never_switches(tmp_path: Path) -> None:
    ota = NodeOta(node_config(tmp_path))
    a = ota.restore(CRNN)
    bad = crnn_variant(tmp_path / "bad" / "crnn.onnx", "garbage", garbage=True)
    assert ota.ocr is not None
    with pytest.raises(DockgateError) as err:
        ota.ocr.swapper.install(verified(bad, "9.9.9-garbage"))
    assert err.value.code is ErrorCode.OTA_SELFTEST_FAILED
    assert "/9 known answers" in err.value.message  # nine fields on the six committed crops
    current = ota.current_ocr()
    assert current is not None and current.slot == a.slot  # still A
    assert ota.ocr.swapper.store.refused()[-1]["version"] == "9.9.9-garbage"
    # the same bytes with a good network pass the same test (the refusal is the output's)
    good = crnn_variant(tmp_path / "b" / "crnn.onnx", "b")
    assert ota.ocr.swapper.install(verified(good, "2.0.0")).version == "2.0.0"


def test_switch_lands_between_cartons_and_rollback_goes_back(tmp_path: Path) -> None:
    ota = NodeOta(node_config(tmp_path))
    a = ota.restore(CRNN)
    inference = Inference(reader=None, ota=ota)
    batch = cartons(400)
    versions: dict[str, set[str]] = {}
    reads: list[Any] = []
    faults: list[BaseException] = []
    stop = threading.Event()
    real_handled = ota.handled

    def handled(carton_id: str, name: str, version: str) -> None:
        versions.setdefault(carton_id, set()).add(version)
        real_handled(carton_id, name, version)

    ota.handled = handled  # type: ignore[method-assign]  # a spy that keeps the real call

    def line() -> None:
        for carton in batch:
            if stop.is_set():
                return
            try:
                reads.append(inference(carton).read)
            except BaseException as exc:  # reported by the assertion below
                faults.append(exc)
                return

    worker = threading.Thread(target=line, name="test-line")
    worker.start()
    try:
        while len(reads) < 5:
            time.sleep(0.02)
        b_path = crnn_variant(tmp_path / "b" / "crnn.onnx", "b")
        assert ota.ocr is not None
        b = ota.ocr.swapper.install(verified(b_path, "2.0.0"))  # loaded, self-tested, switched
        switched_at = len(reads)
        deadline = time.monotonic() + 60
        while len(reads) < switched_at + 5:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        stop.set()
        worker.join(60)
    assert faults == []
    seen = [versions[c.carton_id] for c in batch[: len(reads)]]
    assert all(len(v) == 1 for v in seen)  # one CRNN per carton
    order = [next(iter(v)) for v in seen]
    assert order[0] == a.version and order[-1] == b.version
    assert order == sorted(order, key=lambda v: v == b.version)  # A..A then B..B
    assert {r.status for r in reads} <= {"ACCEPTED", "REVIEW", "UNREADABLE"}

    # the device decides to go back (a failed health check): A again, B refused for good
    back = ota.ocr.swapper.rollback("health: test")
    assert back.slot == a.slot
    current = ota.current_ocr()
    assert current is not None and current.version == a.version
    assert ota.ocr.swapper.store.refused()[-1]["version"] == "2.0.0"
    assert NodeOta(node_config(tmp_path)).restore(CRNN).slot == a.slot  # and after a restart


def test_agreement_goes_to_the_versions_that_handled_the_carton(tmp_path: Path) -> None:
    ota = NodeOta(node_config(tmp_path))
    a = ota.restore(CRNN)
    assert ota.ocr is not None
    ota.handled("c1", CRNN, "1.0.0-old")  # read by a version no longer running
    ota.on_pair("c1", True)
    ota.on_pair("c2", False)  # not remembered: the running version
    ota.on_pair(None, True)
    old, now = ota.ocr.figures.peek("1.0.0-old"), ota.ocr.figures.peek(a.version)
    assert (old.agreement_pairs, old.agreements) == (1, 1)
    assert (now.agreement_pairs, now.agreements) == (2, 1)


# -- over the air ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_node_follows_a_crnn_rollout_over_http(tmp_path: Path) -> None:
    """The real cloud process, the node's agent thread, a rollout of ``ocr.crnn`` to B: the
    line keeps reading through the switch, B is confirmed after its probation cartons, and the
    cloud holds figures (with scanner pairs) for both CRNN versions under ``ocr.crnn``."""
    from edge.trust.signer import DeviceSigner
    from fixtures.fleet import enroll, fleet_cloud
    from ota.release import describe_model
    from tests.ota.test_node_ota import _figured_versions

    entry = model_entry(CRNN)
    b_path = crnn_variant(tmp_path / "b" / "crnn_codes.onnx", "b")
    with fleet_cloud(tmp_path / "cloud", first_version=None) as cloud:
        for path, version, active in ((entry.path, entry.version, True), (b_path, "2.0.0", False)):
            info = describe_model(path, CRNN, version, sha256=sha256_file(path), min_dockgate="0")
            cloud.repo.release(path, info, activate=active)
        (identity,) = enroll(cloud, ["node-01"])
        config = EdgeConfig.model_validate(
            node_config(tmp_path).model_dump()
            | {"sync": {"cloud_url": cloud.url}, "ota": {"enabled": True, "url": cloud.ota_url,
                                                         "models": [CRNN], "poll_s": 30}}
        )  # fmt: skip
        (tmp_path / "data/ota/metadata").mkdir(parents=True)
        (tmp_path / "data/ota/metadata/root.json").write_bytes(cloud.root_json())
        ota = NodeOta(config)
        assert ota.restore(CRNN).version == entry.version
        inference = Inference(reader=None, ota=ota)
        stop = threading.Event()
        faults: list[BaseException] = []
        used: list[str] = []
        real_handled = ota.handled

        def handled(carton_id: str, name: str, version: str) -> None:
            used.append(version)
            real_handled(carton_id, name, version)

        ota.handled = handled  # type: ignore[method-assign]  # a spy that keeps the real call

        def line() -> None:
            for carton in cartons(100_000):
                if stop.is_set():
                    return
                try:
                    inference(carton)
                except BaseException as exc:  # reported by the assertion below
                    faults.append(exc)
                    return
                ota.on_pair(carton.carton_id, True)  # as the node's scanner pairing does

        worker = threading.Thread(target=line, name="test-line")
        worker.start()
        try:
            ota.start_agent(DeviceSigner(identity))
            cloud.start_rollout(
                {
                    "id": "crnn-b",
                    "model": CRNN,
                    "from_version": entry.version,
                    "to_version": "2.0.0",
                    "stages": [{"name": "all", "percent": 100, "min_soak_s": 3600}],
                }
            )
            assert ota.ocr is not None
            deadline = time.monotonic() + 150
            while ota.ocr.running() != "2.0.0" or ota.ocr.swapper.store.probation() is not None:
                assert time.monotonic() < deadline, (ota.ocr.running(), ota.ocr.last_code, faults)
                time.sleep(0.2)
        finally:
            stop.set()
            worker.join(60)
            ota.stop()
        assert faults == []
        assert used[0] == entry.version and used[-1] == "2.0.0"
        reported = cloud.device_models(CRNN)["node-01"]
        assert reported["running"] == "2.0.0" and reported["previous"] == entry.version
        assert _figured_versions(cloud, "node-01") >= {entry.version, "2.0.0"}
