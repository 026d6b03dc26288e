"""`dockgate demo --headless` runs to completion on embedded defaults (CI runs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_headless_demo_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli_main",
            "demo",
            "--headless",
            "--workdir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "failed" not in result.stdout.split("Dockgate demo")[-1]
    assert "OK" in result.stdout and "events" in result.stdout
