"""The two config sections this package owns, chosen by ``type``, and their factories.

``[line_io]``: ``modbus_tcp | modbus_rtu | noop``; ``[scanner]``: ``serial | none``. The
factories use an explicit ``{type: builder}`` table; adapter modules (pymodbus, pyserial) are
imported only when their type is configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import Field

from firmware_bridge.modbus.config import ModbusRtuLineConfig, ModbusTcpLineConfig
from firmware_bridge.noop import NoopLineConfig, NoopLineIO, NullScanSource
from firmware_bridge.ports import LineIO, LineSink, ScanSink, ScanSource
from firmware_bridge.serial.config import NoScannerConfig, SerialScannerConfig

LineIOConfig = Annotated[
    ModbusTcpLineConfig | ModbusRtuLineConfig | NoopLineConfig, Field(discriminator="type")
]
ScannerConfig = Annotated[SerialScannerConfig | NoScannerConfig, Field(discriminator="type")]


def _modbus(config: ModbusTcpLineConfig | ModbusRtuLineConfig, sink: LineSink) -> LineIO:
    from firmware_bridge.modbus.plc import ModbusLineIO

    return ModbusLineIO(config, sink)


def _noop(config: NoopLineConfig, sink: LineSink) -> LineIO:
    return NoopLineIO(config, sink)


LINE_IO_BUILDERS: dict[str, Callable[..., LineIO]] = {
    "modbus_tcp": _modbus,
    "modbus_rtu": _modbus,
    "noop": _noop,
}


def build_line_io(
    config: ModbusTcpLineConfig | ModbusRtuLineConfig | NoopLineConfig, sink: LineSink
) -> LineIO:
    """The LineIO adapter for ``config.type``."""
    return LINE_IO_BUILDERS[config.type](config, sink)


def _serial(config: SerialScannerConfig, sink: ScanSink) -> ScanSource:
    from firmware_bridge.serial.scanner import SerialScanner

    return SerialScanner(config, sink)


def _no_scanner(config: NoScannerConfig, sink: ScanSink) -> ScanSource:
    return NullScanSource(sink)


SCANNER_BUILDERS: dict[str, Callable[..., ScanSource]] = {"serial": _serial, "none": _no_scanner}


def build_scan_source(config: SerialScannerConfig | NoScannerConfig, sink: ScanSink) -> ScanSource:
    """The ScanSource for ``config.type``."""
    return SCANNER_BUILDERS[config.type](config, sink)
