"""``[line_io]`` config for the Modbus PLC (TCP, or RTU over a serial line).

No pymodbus import here: the edge config loads this module.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge.contracts.settings import StrictModel
from firmware_bridge.modbus.regmap import RegisterMap


class ModbusCommon(StrictModel):
    """Settings shared by both Modbus transports."""

    name: str = Field("plc", min_length=1, max_length=40, description="peer name on the panel")
    device_id: int = Field(1, ge=1, le=247, description="Modbus unit / device id of the PLC")
    timeout_s: float = Field(0.5, gt=0, le=10, description="seconds to wait for one response")
    poll_interval_s: float = Field(
        0.02, ge=0.005, le=1, description="photo-eye and status polling period"
    )
    heartbeat_interval_s: float = Field(
        0.5, gt=0, le=10, description="how often the edge bumps its heartbeat register"
    )
    plc_heartbeat_timeout_s: float = Field(
        2.0, gt=0, le=60, description="PLC heartbeat unchanged this long: PLC_HEARTBEAT_LOST"
    )
    handshake_timeout_s: float = Field(
        0.5, gt=0, le=10, description="wait for the PLC to echo a sorting command's sequence"
    )
    write_retries: int = Field(
        2, ge=0, le=10, description="extra attempts for a failed or unconfirmed write"
    )
    failures_before_reconnect: int = Field(
        3, ge=1, le=100, description="consecutive failed requests before the link is reopened"
    )
    reconnect_initial_s: float = Field(
        0.5, gt=0, le=60, description="first wait before reconnecting (then doubles)"
    )
    reconnect_max_s: float = Field(30.0, gt=0, le=600, description="longest wait between tries")
    registers: RegisterMap = Field(
        default_factory=RegisterMap, description="register and coil map (default: research map)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModbusCommon:
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be >= reconnect_initial_s")
        if self.plc_heartbeat_timeout_s <= self.poll_interval_s:
            raise ValueError("plc_heartbeat_timeout_s must be longer than poll_interval_s")
        return self


class ModbusTcpLineConfig(ModbusCommon):
    """PLC over Modbus TCP."""

    type: Literal["modbus_tcp"] = Field("modbus_tcp", description="line adapter: modbus_tcp")
    host: str = Field(min_length=1, max_length=253, description="PLC address or host name")
    port: int = Field(502, ge=1, le=65535, description="Modbus TCP port")

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


class ModbusRtuLineConfig(ModbusCommon):
    """PLC over Modbus RTU on RS-485/RS-232."""

    type: Literal["modbus_rtu"] = Field("modbus_rtu", description="line adapter: modbus_rtu")
    serial_port: str = Field(min_length=1, max_length=255, description="serial device path")
    baudrate: int = Field(19200, ge=1200, le=921600, description="line speed in baud")
    bytesize: Literal[7, 8] = Field(8, description="data bits")
    parity: Literal["N", "E", "O"] = Field("E", description="parity (Modbus RTU default: E)")
    stopbits: Literal[1, 2] = Field(1, description="stop bits")

    @property
    def endpoint(self) -> str:
        return self.serial_port


ModbusLineConfig = ModbusTcpLineConfig | ModbusRtuLineConfig
