"""Config sections, factories, the register map, the pure watchdog, and the no-op adapters."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.config import EdgeConfig, load_edge_config
from edge.contracts.errors import DockgateError, ErrorCode
from firmware_bridge.config import build_line_io, build_scan_source
from firmware_bridge.modbus.regmap import RegisterMap, from_words, to_words
from firmware_bridge.modbus.watch import LineWatch, Reading
from firmware_bridge.noop import NoopLineConfig, NoopLineIO, NullScanSource
from firmware_bridge.ports import LineIO, LinkState, ScanSource, StackLight

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_noop_and_none() -> None:
    config = EdgeConfig()
    assert config.line_io.type == "noop" and config.scanner.type == "none"


def test_example_config_selects_modbus_and_serial() -> None:
    config = load_edge_config(REPO / "fixtures" / "configs" / "edge.example.toml")
    assert config.line_io.type == "modbus_tcp"
    assert config.scanner.type == "serial" and config.scanner.profile == "honeywell"
    assert config.line_io.registers == RegisterMap()  # the example documents the defaults


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[line_io]\ntype = "profibus"\n', "line_io"),
        ('[line_io]\ntype = "modbus_tcp"\nhost = "plc"\ndevice_id = 0\n', "device_id"),
        ('[scanner]\ntype = "serial"\nport = "/dev/x"\nprofile = "acme"\n', "profile"),
        ('[scanner]\ntype = "serial"\nport = "/dev/x"\ntrigger_on = "zz"\n', "trigger_on"),
        (
            '[line_io]\ntype = "modbus_tcp"\nhost = "plc"\n'
            "[line_io.registers.holding]\nsequence = 1\n",  # overlaps tracking id's 2nd word
            "holding",
        ),
        (
            '[line_io]\ntype = "modbus_tcp"\nhost = "plc"\n'
            "[line_io.registers.inputs]\nphoto_eyes = { pe1 = 0 }\n",
            "scan",
        ),
    ],
)
def test_bad_values_fail_in_one_line(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(toml)
    with pytest.raises(DockgateError) as err:
        load_edge_config(path)
    assert err.value.code == ErrorCode.CONFIG_INVALID and key in str(err.value)
    result = CliRunner().invoke(cli, ["edge", "config", "check", str(path)])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1


def test_factories_pick_by_type(tmp_path: Path) -> None:
    config = EdgeConfig(
        line_io={"type": "modbus_rtu", "serial_port": str(tmp_path / "ttyPLC")},
        scanner={"type": "serial", "port": str(tmp_path / "ttyScan")},
    )
    line = build_line_io(config.line_io, lambda e: None)
    scan = build_scan_source(config.scanner, lambda e: None)
    assert type(line).__name__ == "ModbusLineIO" and isinstance(line, LineIO)
    assert type(scan).__name__ == "SerialScanner" and isinstance(scan, ScanSource)
    assert isinstance(build_line_io(NoopLineConfig(), lambda e: None), NoopLineIO)
    assert isinstance(build_scan_source(EdgeConfig().scanner, lambda e: None), NullScanSource)


def test_word_order_round_trip() -> None:
    assert to_words(0x12345678, "ABCD") == [0x1234, 0x5678]
    assert to_words(0x12345678, "CDAB") == [0x5678, 0x1234]
    for order in ("ABCD", "CDAB"):
        assert from_words(to_words(4_000_000_000, order), order) == 4_000_000_000
    with pytest.raises(ValueError):
        to_words(1 << 32, "ABCD")


def reading(at: float, scan_id: int = 0, hb: int = 0, status: int = 1, **eyes: bool) -> Reading:
    return Reading({"scan": False, "pre_divert_1": False, **eyes}, scan_id, hb, status, at)


def test_watch_edges_and_heartbeat_alarm() -> None:
    watch = LineWatch(heartbeat_timeout_s=1.0)
    assert watch.observe(reading(0.0)) == ([], None)  # baseline
    edges, _ = watch.observe(reading(0.1, scan_id=1, hb=1, scan=True))
    assert [(e.name, e.blocked, e.tracking_id) for e in edges] == [("scan", True, 1)]
    edges, _ = watch.observe(reading(0.2, scan_id=3, hb=2))  # id 2's pulse fell between polls
    assert [(e.name, e.blocked, e.tracking_id) for e in edges] == [
        ("scan", True, 3),
        ("scan", False, 3),
    ]
    assert watch.missed_edges == 1
    edges, _ = watch.observe(reading(0.3, scan_id=3, hb=3, pre_divert_1=True))
    assert [(e.name, e.blocked) for e in edges] == [("pre_divert_1", True)]
    _, alarm = watch.observe(reading(1.5, scan_id=3, hb=3))
    assert alarm == "PLC heartbeat stopped"
    _, alarm = watch.observe(reading(1.6, scan_id=3, hb=4))
    assert alarm == ""  # cleared
    _, alarm = watch.observe(reading(1.7, scan_id=3, hb=5, status=0b101))
    assert alarm is not None and "fail-safe" in alarm


def test_noop_adapters_are_logged_and_never_confirm(caplog: pytest.LogCaptureFixture) -> None:
    events: list[Any] = []

    async def body() -> None:
        line = NoopLineIO(NoopLineConfig(), events.append)
        with caplog.at_level(logging.WARNING):
            await line.start()
        ack = await line.send_sort_command(7, 1)
        assert not ack.confirmed and "noop" in ack.message
        await line.set_stack_light(StackLight.for_condition("normal"))
        assert line.status().state == LinkState.DISABLED
        await line.stop()

    asyncio.run(body())
    assert "no PLC" in caplog.text and events[0].state == LinkState.DISABLED
    scanner = NullScanSource()
    scanner.start()
    assert scanner.trigger() is False and scanner.status().state == LinkState.DISABLED
    scanner.stop()


def test_stack_light_colours_follow_iec_60204_1() -> None:
    assert StackLight.for_condition("fault") == StackLight(red=True, buzzer=True)
    assert StackLight.for_condition("abnormal") == StackLight(yellow=True)
    assert StackLight.for_condition("normal") == StackLight(green=True)
    assert StackLight.for_condition("action") == StackLight(blue=True)
    regs = RegisterMap.model_validate({"coils": {"stack_blue": -1}})
    assert "blue" not in regs.stack_coils()
