"""`dockgate demo`: headless runs to completion with every check passing (CI runs it), and
Ctrl-C on the live demo leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

DEMO = [sys.executable, "-m", "edge.cli_main", "demo"]


@pytest.mark.slow
def test_headless_demo_scores_every_carton(tmp_path: Path) -> None:
    result = subprocess.run(
        [*DEMO, "--headless", "--cartons", "20", "--workdir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-3000:]
    summary = out.split("Dockgate demo: 20 cartons")[-1]
    assert "FAILED" not in summary
    for line in (
        "cartons seen (presence trigger)",
        "reads ACCEPTED correct",
        "AGV orders completed",
        "envelopes verified against the fleet CA",
        "ledger verify",
    ):
        assert line in summary
    assert "20/20 (missed 0, split 0)" in summary


def test_ctrl_c_leaves_nothing_running(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*DEMO, "--cartons", "3", "--workdir", str(tmp_path / "d")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # our own group: the SIGINT below reaches only the demo's
    )
    assert proc.stdout is not None
    seen: list[str] = []
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 240
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("panel: http://127.0.0.1:"):
                break
            assert time.monotonic() < deadline, "".join(seen)
        else:
            raise AssertionError("demo ended before it was ready:\n" + "".join(seen))
        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        for peer in ("cloud serve", "mosquitto", "sim agv", "sim plc", "sim scanner"):
            assert peer in names, names
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, rest[-3000:]
        assert "nothing left running" in rest
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for child in children:
            if child.is_running():
                child.kill()
