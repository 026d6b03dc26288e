"""Atomic swap: self-test gates the switch, state survives restarts, cartons never mix versions."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from edge.contracts.errors import DockgateError, ErrorCode
from edge.vision.session import load_session
from ota.fetch import VerifiedModel
from ota.release import describe_model, sha256_file
from ota.swap import ModelHolder, SlotStore, Swapper
from ota.updater import Updater, version_key
from tests.ota.conftest import Fleet
from tests.ota.models import KNOWN, known_answer_test

REPO = Path(__file__).resolve().parents[2]


def loader(path: Path, sha256: str, size: int) -> ort.InferenceSession:
    return load_session(path, sha256, size=size, threads=1)


def swapper(
    ota_dir: Path, holder: ModelHolder[Any] | None = None, max_starts: int = 3
) -> Swapper[Any]:
    return Swapper(
        SlotStore(ota_dir, "defect"),
        loader,
        known_answer_test,
        holder,
        max_unconfirmed_starts=max_starts,
    )


def factory(fleet: Fleet, version: str) -> VerifiedModel:
    path = fleet.models[version]
    return VerifiedModel("defect", version, path, sha256_file(path), path.stat().st_size, {})


def tag(session: ort.InferenceSession) -> float:
    return float(session.run(["tag"], {"x": KNOWN[0][0]})[0][0])


def test_install_switch_selftest_restart_and_rollback(fleet: Fleet) -> None:
    ota_dir = fleet.tmp / "dev" / "ota"
    swap = swapper(ota_dir)
    assert swap.install(factory(fleet, "1.0.0"), move=False).version == "1.0.0"
    assert fleet.models["1.0.0"].exists()  # the factory copy is copied, not moved
    swap.install(factory(fleet, "1.1.0"), move=False)
    assert tag(swap.holder.current().model) == 2.0
    state = json.loads((ota_dir / "models" / "defect" / "state.json").read_text())
    assert (state["active"]["version"], state["previous"]["version"]) == ("1.1.0", "1.0.0")

    with pytest.raises(DockgateError) as err:
        swap.install(factory(fleet, "9.9.9-bad"), move=False)
    assert err.value.code is ErrorCode.OTA_SELFTEST_FAILED
    assert swap.holder.current().version == "1.1.0"  # a failed self-test never switches
    files = sorted(p.name for p in (ota_dir / "models" / "defect").glob("*.onnx"))
    assert len(files) == 2 and not any(f.startswith("9.9.9") for f in files)

    restarted = swapper(ota_dir)
    assert restarted.restore().version == "1.1.0"
    assert restarted.rollback().version == "1.0.0"
    assert swapper(ota_dir).restore().version == "1.0.0"


def test_restore_falls_back_to_previous_if_the_active_file_is_damaged(fleet: Fleet) -> None:
    ota_dir = fleet.tmp / "dev" / "ota"
    swap = swapper(ota_dir)
    swap.install(factory(fleet, "1.0.0"), move=False)
    active = swap.install(factory(fleet, "1.1.0"), move=False)
    path = swap.store.path(active.slot)
    path.write_bytes(path.read_bytes()[:-10])  # e.g. disk damage after the switch
    assert swapper(ota_dir).restore().version == "1.0.0"


def test_cartons_never_mix_versions_under_concurrent_swaps(fleet: Fleet) -> None:
    ota_dir = fleet.tmp / "dev" / "ota"
    swap = swapper(ota_dir)
    swap.install(factory(fleet, "1.0.0"), move=False)
    stop = threading.Event()
    cartons: list[tuple[str, list[float]]] = []
    errors: list[BaseException] = []

    def pipeline() -> None:
        try:
            while not stop.is_set():
                active = swap.holder.current()  # once per carton
                frames = [tag(active.model) for _ in range(4)]
                cartons.append((active.version, frames))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    workers = [threading.Thread(target=pipeline, name=f"frames-{i}") for i in range(3)]
    for w in workers:
        w.start()
    try:
        for _ in range(3):
            swap.install(factory(fleet, "1.1.0"), move=False)
            swap.rollback()
        swap.install(factory(fleet, "1.1.0"), move=False)
    finally:
        stop.set()
        for w in workers:
            w.join(10)
    assert not errors
    expected = {"1.0.0": 1.0, "1.1.0": 2.0}
    for version, frames in cartons:
        assert frames == [expected[version]] * 4, (version, frames)
    assert {v for v, _ in cartons} == {"1.0.0", "1.1.0"}


def test_update_cycle_keeps_the_running_model_on_every_refusal(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    client = fleet.device()
    ota_dir = client.metadata_dir.parent
    updater = Updater(client, swapper(ota_dir), "defect")
    first = updater.update_once()
    assert (first.running, first.switched, first.code) == ("1.0.0", True, None)
    assert updater.update_once().switched is False  # nothing new

    fleet.release("1.1.0")
    fleet.repo.refresh(timestamp_expiry=timedelta(seconds=-60))
    expired = updater.update_once()
    assert (expired.code, expired.running) == (ErrorCode.OTA_METADATA_EXPIRED, "1.0.0")
    assert updater.swapper.holder.current().version == "1.0.0"

    fleet.repo.refresh()
    assert updater.update_once().running == "1.1.0"

    fleet.release("9.9.9-bad")
    bad = updater.update_once()
    assert (bad.code, bad.running, bad.offered) == (
        ErrorCode.OTA_SELFTEST_FAILED,
        "1.1.0",
        "9.9.9-bad",
    )
    fleet.log.clear()
    again = updater.update_once()  # no install loop: the refused release is not downloaded again
    assert again.code is ErrorCode.OTA_SELFTEST_FAILED
    assert not [p for p, _ in fleet.log if p.startswith("/ota/targets/defect/9.9.9-bad")]

    fleet.repo.activate("defect", "1.0.0")  # deliberate rollback: a new signed instruction
    back = updater.update_once()
    assert (back.running, back.switched) == ("1.0.0", True)
    np.testing.assert_equal(tag(updater.swapper.holder.current().model), 1.0)


def test_a_release_for_a_newer_dockgate_is_not_downloaded(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    client = fleet.device()
    updater = Updater(client, swapper(client.metadata_dir.parent), "defect")
    assert updater.update_once().running == "1.0.0"
    model = fleet.models["1.1.0"]
    info = describe_model(model, "defect", "1.1.0", sha256=sha256_file(model), min_dockgate="99.0")
    fleet.repo.release(model, info)
    fleet.log.clear()
    outcome = updater.update_once()
    assert (outcome.code, outcome.running, outcome.offered) == (
        ErrorCode.OTA_INCOMPATIBLE,
        "1.0.0",
        "1.1.0",
    )
    assert not [p for p, _ in fleet.log if "/targets/defect/1.1.0/" in p]
    assert version_key("1.3.0rc1") == (1, 3, 0) and version_key("x") == (0,)


def test_a_crash_loop_after_the_switch_goes_back_to_a_and_never_reinstalls_b(
    fleet: Fleet,
) -> None:
    import signal
    import subprocess
    import sys

    fleet.release("1.0.0")
    client = fleet.device()
    ota_dir = client.metadata_dir.parent
    assert Updater(client, swapper(ota_dir), "defect").update_once().running == "1.0.0"
    fleet.release("1.1.0")
    assert Updater(client, swapper(ota_dir), "defect").update_once().running == "1.1.0"
    # The new version crashes the process right after start, three times (real SIGKILLs).
    code = (
        "import os, signal, sys; from pathlib import Path;"
        "from tests.ota.test_swap import swapper;"
        "print(swapper(Path(sys.argv[1])).restore().version, flush=True);"
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    started = []
    for _ in range(4):
        run = subprocess.run(
            [sys.executable, "-c", code, str(ota_dir)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == -signal.SIGKILL, run.stderr
        started.append(run.stdout.strip())
    assert started == ["1.1.0", "1.1.0", "1.1.0", "1.0.0"]
    store = SlotStore(ota_dir, "defect")
    assert store.refused()[-1]["version"] == "1.1.0"
    assert "crash loop" in store.refused()[-1]["reason"]
    fleet.log.clear()
    outcome = Updater(client, swapper(ota_dir), "defect")
    outcome.swapper.restore()
    result = outcome.update_once()  # the repository still points at 1.1.0
    assert (result.code, result.running, result.offered) == (
        ErrorCode.OTA_DEVICE_ROLLBACK,
        "1.0.0",
        "1.1.0",
    )
    assert not [p for p, _ in fleet.log if "/targets/defect/1.1.0/" in p]


def test_confirmed_versions_survive_restarts_and_health_rollback_is_remembered(
    fleet: Fleet,
) -> None:
    ota_dir = fleet.tmp / "dev" / "ota"
    swap = swapper(ota_dir)
    swap.install(factory(fleet, "1.0.0"), move=False)
    swap.install(factory(fleet, "1.1.0"), move=False)
    assert swap.store.probation() == 0
    swap.confirm()
    assert swap.store.probation() is None
    for _ in range(5):
        assert swapper(ota_dir).restore().version == "1.1.0"
    assert swap.rollback("agreement with the scanner fell to 80 %").version == "1.0.0"
    refused = swap.store.refused()[-1]
    assert refused["version"] == "1.1.0" and "scanner" in refused["reason"]
    assert swapper(ota_dir).restore().version == "1.0.0"


def test_the_heartbeat_report_shows_versions_probation_and_refusals(fleet: Fleet) -> None:
    from edge.contracts.ota import ModelFigures, OtaReport
    from ota.report import model_report

    ota_dir = fleet.tmp / "dev" / "ota"
    swap = swapper(ota_dir)
    swap.install(factory(fleet, "1.0.0"), move=False)
    swap.install(factory(fleet, "1.1.0"), move=False)
    figures = {"1.1.0": ModelFigures(observations=40, agreement_pairs=30, agreements=29)}
    report = model_report(swap.store, figures=figures)
    assert (report.running, report.previous, report.on_probation) == ("1.1.0", "1.0.0", True)
    swap.rollback("agreement fell")
    after = model_report(swap.store)
    assert (after.running, after.previous, after.on_probation) == ("1.0.0", None, False)
    assert [r.version for r in after.refused] == ["1.1.0"]
    wire = OtaReport(device_id="edge-01", models=[report, after]).model_dump_json()
    assert OtaReport.model_validate_json(wire).models[0].figures["1.1.0"].agreements == 29
