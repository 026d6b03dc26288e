"""SIGKILL at 20+ points of download, verification and switch: always exactly A or B, loadable.

The child follows a cloud assignment through the edge OTA agent (the node's path: TUF refresh,
resumable download, verification against signed metadata, load, self-test, atomic switch)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.contracts.ota import Assignment
from tests.ota.conftest import Fleet
from tests.ota.kill_child import follow
from tests.ota.test_swap import swapper

REPO = Path(__file__).resolve().parents[2]


def _assignment(fleet: Fleet, version: str) -> Assignment:
    target = next(path for path, c in fleet.repo.releases().items() if c.get("version") == version)
    info = fleet.repo.load("targets").signed.targets[target]
    return Assignment(
        name="defect",
        version=version,
        target=target,
        sha256=info.hashes["sha256"],
        length=info.length,
    )


def _child(fleet: Fleet, ota_dir: Path) -> subprocess.Popen[str]:
    wanted = _assignment(fleet, "1.1.0").model_dump_json()
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ota.kill_child", fleet.base_url, str(ota_dir), wanted],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _run_until(fleet: Fleet, ota_dir: Path, kill_after: int | None) -> list[str]:
    """Run the child; SIGKILL it right after its ``kill_after``-th event line (0-based)."""
    proc = _child(fleet, ota_dir)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if kill_after is not None and len(lines) - 1 == kill_after:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(60)
        if kill_after is None:
            assert proc.returncode == 0, (lines, proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return lines


def _assert_exactly_a_or_b(ota_dir: Path) -> str:
    """What a restart finds: one active version, its verified file present and loadable."""
    swap = swapper(ota_dir, max_starts=1000)  # these checks are not crash-loop starts
    active = swap.restore()  # loads through the sha256-gated loader and warms up
    assert active.version in {"1.0.0", "1.1.0"}
    state_active, state_previous = swap.store.read()
    assert state_active == active.slot
    kept = {p.name for p in swap.store.dir.glob("*.onnx")}
    assert active.slot.file in kept
    if state_previous is not None:  # the rollback target is kept too
        assert state_previous.file in kept
    return active.version


@pytest.mark.slow
def test_sigkill_anywhere_leaves_exactly_a_or_b(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    template = fleet.tmp / "template" / "ota"
    client = fleet.device("template")
    swapper(template).install(client.fetch("defect"))
    fleet.release("1.1.0", activate=False)  # the cloud assigns it, not the pointer

    clean = fleet.tmp / "clean" / "ota"
    shutil.copytree(template, clean)
    events = _run_until(fleet, clean, None)
    assert events[-1] == "done 1.1.0 None"
    points = len(events) - 1  # every event before "done" is a kill point
    assert points >= 20, events

    seen: dict[str, set[str]] = {"1.0.0": set(), "1.1.0": set()}
    for point in range(points):
        ota_dir = fleet.tmp / f"kill-{point}" / "ota"
        shutil.copytree(template, ota_dir)
        killed_after = _run_until(fleet, ota_dir, point)[-1]
        version = _assert_exactly_a_or_b(ota_dir)
        seen[version].add(killed_after.split()[0])
        # After the crash the device still converges (in-process: resume, verify, switch).
        managed = follow(fleet.base_url, ota_dir, _assignment(fleet, "1.1.0"))
        assert managed.running() == "1.1.0" and managed.last_code is None
        assert _assert_exactly_a_or_b(ota_dir) == "1.1.0"
    # The kills covered download, verification and the switch, on both sides of the flip.
    assert {"download", "verified", "loaded"} <= seen["1.0.0"], seen
    assert "switched" in seen["1.1.0"] or "persisted" in seen["1.1.0"], seen
