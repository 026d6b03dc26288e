"""A sorting-line PLC simulator on pymodbus's server (current ``SimDevice``/``SimData`` API).

It behaves like the PLC program the register map describes: cartons break the scan photo-eye
at a configurable rate and get a tracking id; the command mailbox is taken when the sequence
changes and echoed; a carton reaching the diverter without a taken command, with destination
0 or an unknown chute, or while the edge heartbeat is lost (fail-safe), goes to the reject
lane. Every gate action is recorded in :attr:`PlcSimulator.gate_log` for tests and the demo.

Faults to inject: :attr:`echo_commands` (a stalled PLC program), :attr:`response_delay_s`
(timeouts), :attr:`failing_coils` (exception responses on coils), :attr:`failing_registers`
(busy answers to register writes), :attr:`stuck_coils` (a write that
answers OK but does not stick), :attr:`heartbeat_running`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from firmware_bridge.aio import cancel_and_wait
from firmware_bridge.modbus.regmap import (
    STATUS_FAILSAFE,
    STATUS_RUNNING,
    RegisterMap,
    from_words,
    to_words,
)

FC_COILS, FC_DI, FC_HR, FC_IR = 1, 2, 3, 4
_WRITE_COIL_FCS = (5, 15)
_WRITE_REGISTER_FCS = (6, 16)


@dataclass(frozen=True)
class GateAction:
    """What the PLC did with one carton at the diverter."""

    tracking_id: int
    gate: str  # "diverter" or "reject"
    destination: int  # chute number; 0 for the reject lane
    reason: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class SimSettings:
    """Line behaviour. ``rate_per_hour`` 0 means cartons come only from :meth:`inject_carton`."""

    device_id: int = 1
    rate_per_hour: float = 0.0
    travel_s: float = 1.0  # scan photo-eye to the diverter decision point
    pe_pulse_s: float = 0.1  # how long a carton blocks a photo-eye
    gate_pulse_s: float = 0.2
    scan_cycle_s: float = 0.005  # PLC scan cycle
    heartbeat_period_s: float = 0.1
    edge_heartbeat_timeout_s: float = 2.0  # 0: no watchdog


@dataclass
class _Carton:
    tracking_id: int
    arrives_at: float
    eye_off_at: float


class PlcSimulator:
    """The simulated PLC. ``on_gate`` is called with every :class:`GateAction`."""

    def __init__(
        self,
        regs: RegisterMap | None = None,
        settings: SimSettings | None = None,
        on_gate: Callable[[GateAction], None] | None = None,
    ) -> None:
        self.regs = regs or RegisterMap()
        self.settings = settings or SimSettings()
        self.on_gate = on_gate
        self.gate_log: list[GateAction] = []
        self.commands: dict[int, int] = {}  # tracking id -> destination, as taken
        self.taken_sequences: list[int] = []
        self.echo_commands = True
        self.heartbeat_running = True
        self.response_delay_s = 0.0
        self.failing_coils: dict[int, int] = {}  # coil -> how many more writes to refuse
        self.stuck_coils: set[int] = set()
        self.failing_registers: dict[int, int] = {}  # holding register -> writes to refuse
        self.failsafe = False
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._internal = False
        self._closing = asyncio.Event()
        self._next_id = 1
        self._cartons: list[_Carton] = []
        self._pulses: dict[int, float] = {}  # gate coil -> switch-off time
        self._counts = {"diverted": 0, "rejected": 0}

    # -- lifecycle --------------------------------------------------------------------------
    async def start_tcp(self, host: str = "127.0.0.1", port: int = 5020) -> None:
        self._server = ModbusTcpServer(context=self._device(), address=(host, port))
        await self._start()

    async def start_rtu(self, serial_port: str, baudrate: int = 19200, parity: str = "E") -> None:
        self._server = ModbusSerialServer(
            context=self._device(),
            framer=FramerType.RTU,
            port=serial_port,
            baudrate=baudrate,
            parity=parity,
        )
        await self._start()

    async def stop(self) -> None:
        self._closing.set()
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated
            self._server = None
            for _ in range(3):  # let cancelled request handlers finish their last step
                await asyncio.sleep(0)

    async def _start(self) -> None:
        assert self._server is not None
        await self._server.serve_forever(background=True)
        await self._set(FC_IR, self.regs.input_registers.status, [STATUS_RUNNING])
        await self._set(FC_DI, self.regs.inputs.line_running, [True])
        await self._set(FC_DI, self.regs.inputs.estop_ok, [True])
        self._task = asyncio.create_task(self._run(), name="plc-sim")

    def _device(self) -> SimDevice:
        r = self.regs
        c, h, i = r.coils, r.holding, r.input_registers
        coil_top = max([*c.diverters, c.reject_gate, *r.stack_coils().values()])
        di_top = max([*r.inputs.photo_eyes.values(), r.inputs.line_running, r.inputs.estop_ok])
        hr_top = max(h.tracking_id + 1, h.destination, h.sequence, h.edge_heartbeat)
        first, count = i.span()

        def bits(top: int) -> list[SimData]:
            size = (top // 16 + 1) * 16  # whole 16-bit words
            return [SimData(0, count=size, values=False, datatype=DataType.BITS)]

        def regs(top: int) -> list[SimData]:
            return [SimData(0, count=top + 1, values=0, datatype=DataType.REGISTERS)]

        return SimDevice(
            self.settings.device_id,
            simdata=(bits(coil_top), bits(di_top), regs(hr_top), regs(first + count - 1)),
            action=self._action,
        )

    # -- fault injection hook (called by pymodbus for every access) --------------------------
    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if self._internal:
            return None
        if self.response_delay_s:
            # Ends early when the simulator stops, so no request handler outlives the server.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.response_delay_s)
        if function_code in _WRITE_REGISTER_FCS and set_values is not None:
            for offset in range(len(set_values)):
                if self.failing_registers.get(address + offset, 0) > 0:
                    self.failing_registers[address + offset] -= 1
                    return ExcCodes.DEVICE_BUSY
        if function_code in _WRITE_COIL_FCS and set_values is not None:
            for offset in range(len(set_values)):
                coil = address + offset
                if self.failing_coils.get(coil, 0) > 0:
                    self.failing_coils[coil] -= 1
                    return ExcCodes.DEVICE_FAILURE
                if coil in self.stuck_coils:
                    set_values[offset] = False  # the output card does not follow
        return None

    # -- helpers for tests and the PLC program ------------------------------------------------
    async def _set(self, fc: int, address: int, values: list[int] | list[bool]) -> None:
        assert self._server is not None
        self._internal = True
        try:
            await self._server.async_setValues(self.settings.device_id, fc, address, values)
        finally:
            self._internal = False

    async def get(self, fc: int, address: int, count: int = 1) -> list[int] | list[bool]:
        """Read the datastore (fc 1 coils, 2 inputs, 3 holding, 4 input registers)."""
        assert self._server is not None
        self._internal = True
        try:
            return await self._server.async_getValues(self.settings.device_id, fc, address, count)
        finally:
            self._internal = False

    async def coil(self, address: int) -> bool:
        return bool((await self.get(FC_COILS, address))[0])

    async def inject_carton(self) -> int:
        """A carton breaks the scan photo-eye now; returns its tracking id."""
        now = time.monotonic()
        tracking_id, self._next_id = self._next_id, self._next_id + 1
        s = self.settings
        self._cartons.append(_Carton(tracking_id, now + s.travel_s, now + s.pe_pulse_s))
        ir = self.regs.input_registers
        # Tracking id and photo-eye change in the same scan cycle (no await in between yields).
        await self._set(FC_IR, ir.scan_tracking_id, to_words(tracking_id, self.regs.word_order))
        await self._set(FC_DI, self.regs.inputs.photo_eyes["scan"], [True])
        return tracking_id

    # -- the PLC program ----------------------------------------------------------------------
    async def _run(self) -> None:
        s = self.settings
        started = time.monotonic()
        next_hb = next_carton = started
        plc_hb = 0
        last_edge_hb: tuple[int, float] = (-1, started)
        while not self._closing.is_set():
            now = time.monotonic()
            if self.heartbeat_running and now >= next_hb:
                plc_hb = (plc_hb + 1) & 0xFFFF
                next_hb = now + s.heartbeat_period_s
                await self._set(FC_IR, self.regs.input_registers.plc_heartbeat, [plc_hb])
            last_edge_hb = await self._watch_edge(now, last_edge_hb)
            await self._mailbox()
            if s.rate_per_hour > 0 and now >= next_carton:
                next_carton = now + 3600.0 / s.rate_per_hour
                await self.inject_carton()
            await self._move_cartons(now)
            await asyncio.sleep(s.scan_cycle_s)

    async def _watch_edge(self, now: float, last: tuple[int, float]) -> tuple[int, float]:
        value = int((await self.get(FC_HR, self.regs.holding.edge_heartbeat))[0])
        if value != last[0]:
            last = (value, now)
        timeout = self.settings.edge_heartbeat_timeout_s
        failsafe = timeout > 0 and now - last[1] > timeout
        if failsafe != self.failsafe:
            self.failsafe = failsafe
            word = STATUS_RUNNING | (STATUS_FAILSAFE if failsafe else 0)
            await self._set(FC_IR, self.regs.input_registers.status, [word])
        return last

    async def _mailbox(self) -> None:
        h, ir = self.regs.holding, self.regs.input_registers
        seq = int((await self.get(FC_HR, h.sequence))[0])
        acked = int((await self.get(FC_IR, ir.ack_sequence))[0])
        if seq == acked or not self.echo_commands:
            return
        words = [int(w) for w in await self.get(FC_HR, h.tracking_id, 2)]
        tracking_id = from_words(words, self.regs.word_order)
        self.commands[tracking_id] = int((await self.get(FC_HR, h.destination))[0])
        self.taken_sequences.append(seq)
        await self._set(FC_IR, ir.ack_sequence, [seq])

    async def _move_cartons(self, now: float) -> None:
        scan_eye = self.regs.inputs.photo_eyes["scan"]
        if self._cartons and all(c.eye_off_at <= now for c in self._cartons):
            await self._set(FC_DI, scan_eye, [False])
        for carton in [c for c in self._cartons if c.arrives_at <= now]:
            self._cartons.remove(carton)
            await self._decide(carton.tracking_id, now)
        for coil, off_at in list(self._pulses.items()):
            if off_at <= now:
                del self._pulses[coil]
                await self._set(FC_COILS, coil, [False])

    async def _decide(self, tracking_id: int, now: float) -> None:
        destination = self.commands.pop(tracking_id, None)
        diverters = self.regs.coils.diverters
        if self.failsafe:
            reason = "fail-safe: edge heartbeat lost"
        elif destination is None:
            reason = "no confirmed command"
        elif destination == 0:
            reason = "destination 0 (reject)"
        elif destination > len(diverters):
            reason = f"unknown destination {destination}"
        else:
            reason = ""
        if reason or destination is None:
            action = GateAction(tracking_id, "reject", 0, reason)
            coil = self.regs.coils.reject_gate
            self._counts["rejected"] += 1
        else:
            action = GateAction(tracking_id, "diverter", destination, "command")
            coil = diverters[destination - 1]
            self._counts["diverted"] += 1
        self.gate_log.append(action)
        await self._set(FC_COILS, coil, [True])
        self._pulses[coil] = now + self.settings.gate_pulse_s
        ir, order = self.regs.input_registers, self.regs.word_order
        await self._set(FC_IR, ir.diverted, to_words(self._counts["diverted"], order))
        await self._set(FC_IR, ir.rejected, to_words(self._counts["rejected"], order))
        if self.on_gate is not None:
            self.on_gate(action)
