"""``dockgate sim plc`` and ``dockgate sim scanner`` as real processes: they serve real peers,
print what they do, and stop cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import asyncio
import queue
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from firmware_bridge.modbus.config import ModbusTcpLineConfig
from firmware_bridge.modbus.plc import ModbusLineIO
from firmware_bridge.ports import LineEvent, PhotoEyeEdge, Scan, ScanEvent
from firmware_bridge.serial.config import SerialScannerConfig
from firmware_bridge.serial.scanner import SerialScanner
from tests.support.net import wait_for_port

DOCKGATE = [sys.executable, "-c", "from edge.cli import main; main()"]


def _interrupt(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out
    return out


def test_sim_plc_serves_cartons_and_stops_on_ctrl_c(port: int, run_async: Any) -> None:
    proc = subprocess.Popen(
        [*DOCKGATE, "sim", "plc", "--port", str(port), "--rate", "7200", "--travel", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port)

        async def body() -> None:
            events: list[LineEvent] = []
            io = ModbusLineIO(
                ModbusTcpLineConfig(host="127.0.0.1", port=port, heartbeat_interval_s=0.2),
                events.append,
            )
            await io.start()
            try:
                assert await io.wait_connected(5)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    edges = [e for e in events if isinstance(e, PhotoEyeEdge) and e.blocked]
                    if edges and edges[-1].tracking_id:
                        break
                    await asyncio.sleep(0.02)
                tracking_id = edges[-1].tracking_id
                assert tracking_id is not None
                assert (await io.send_sort_command(tracking_id, 2)).confirmed
                await asyncio.sleep(0.6)
            finally:
                await io.stop()

        run_async(body)
    finally:
        out = _interrupt(proc)
    assert "Modbus TCP on 127.0.0.1" in out
    assert "-> chute 2" in out and "stopped after" in out


def test_sim_scanner_prints_its_pty_and_feeds_reads(tmp_path: Path) -> None:
    link = tmp_path / "scanner"
    proc = subprocess.Popen(
        [
            *DOCKGATE,
            "sim",
            "scanner",
            "--link",
            str(link),
            "--rate",
            "1200",
            "--garbage-every",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "/dev/pts/" in first and str(link) in first
        scans: queue.Queue[ScanEvent] = queue.Queue()
        scanner = SerialScanner(SerialScannerConfig(port=str(link)), scans.put)
        scanner.start()
        try:
            deadline = time.monotonic() + 5
            got: list[Scan] = []
            while len(got) < 3 and time.monotonic() < deadline:
                event = scans.get(timeout=5)
                if isinstance(event, Scan):
                    got.append(event)
            assert len(got) == 3 and all(s.symbology == "]C1" for s in got)
            assert scanner.status().counters["garbled"] >= 1
        finally:
            scanner.stop()
    finally:
        out = _interrupt(proc)
    assert "stopped" in out and not link.exists()


def test_sim_bad_options_fail_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from edge.cli import cli

    bad = tmp_path / "edge.toml"
    bad.write_text('[line_io.registers]\nword_order = "BADC"\n')
    result = CliRunner().invoke(cli, ["sim", "plc", "--config", str(bad)])
    assert result.exit_code == 2 and "line_io.registers.word_order" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["sim", "scanner", "--profile", "acme"])
    assert result.exit_code == 2 and "honeywell" in result.output
