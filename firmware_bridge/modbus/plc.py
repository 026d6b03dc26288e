"""The sorting-line PLC over Modbus (pymodbus async client, TCP or RTU).

One supervisor task owns the connection: it connects, polls photo-eyes and status, bumps the
edge heartbeat, watches the PLC's heartbeat, and reconnects with a doubling delay. Sorting
decisions go through the command mailbox (:meth:`ModbusLineIO.send_sort_command`): write the
tracking id and destination, then bump the sequence, then wait for the PLC's echo. Writes are
idempotent (same values, same sequence), which is what makes retrying them safe. Every failure
becomes a ``PLC_*`` error code on the status the panel shows; an output write that cannot be
read back is reported, never assumed done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from edge.contracts.errors import DockgateError, ErrorCode
from firmware_bridge.aio import cancel_and_wait
from firmware_bridge.modbus.config import ModbusLineConfig, ModbusTcpLineConfig
from firmware_bridge.modbus.regmap import to_words
from firmware_bridge.modbus.watch import LineWatch, decode_reading
from firmware_bridge.ports import (
    CommandAck,
    ConnectionStatus,
    LineSink,
    LinkState,
    StackLight,
)

log = logging.getLogger(__name__)

_EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
}
_ACK_POLL_S = 0.002
_COUNTERS = (
    "polls",
    "timeouts",
    "exceptions",
    "reconnects",
    "commands",
    "confirmed",
    "handshake_timeouts",
    "write_failures",
    "missed_edges",
)


def _runs(coils: dict[int, bool]) -> list[tuple[int, list[bool]]]:
    """Coils grouped into runs of consecutive addresses: [(first address, values), ...]."""
    runs: list[tuple[int, list[bool]]] = []
    for addr in sorted(coils):
        if runs and runs[-1][0] + len(runs[-1][1]) == addr:
            runs[-1][1].append(coils[addr])
        else:
            runs.append((addr, [coils[addr]]))
    return runs


class PlcError(DockgateError):
    """A failed Modbus request, with its ``PLC_*`` code."""


class _LinkLostError(Exception):
    def __init__(self, error: PlcError) -> None:
        super().__init__(error.message)
        self.error = error


Client = AsyncModbusTcpClient | AsyncModbusSerialClient


class ModbusLineIO:
    """:class:`firmware_bridge.ports.LineIO` for a Modbus PLC (asyncio)."""

    def __init__(self, config: ModbusLineConfig, sink: LineSink) -> None:
        self.config = config
        self.regs = config.registers
        self._sink = sink
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._io_lock = asyncio.Lock()  # one request at a time (RTU has no transaction ids)
        self._mailbox_lock = asyncio.Lock()
        self._connected = asyncio.Event()
        self._seq = 0
        self._edge_hb = 0
        self._failures = 0
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._status = ConnectionStatus(peer=config.name, state=LinkState.STOPPED)
        self._ready = asyncio.Event()  # connected and a first reading taken
        self._stopping = False
        self._watch = LineWatch(config.plc_heartbeat_timeout_s)

    # -- LineIO -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("PLC adapter already started")
        self._publish(LinkState.CONNECTING)
        self._task = asyncio.create_task(self._supervise(), name=f"plc-{self.config.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        self._drop_client()
        self._publish(LinkState.STOPPED)

    def status(self) -> ConnectionStatus:
        return replace(self._status, counters=dict(self._counters))

    async def wait_connected(self, timeout: float) -> bool:
        """True once the PLC answers and a first reading is taken (start-up ordering, tests)."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def send_sort_command(self, tracking_id: int, destination: int) -> CommandAck:
        t0 = time.monotonic()
        async with self._mailbox_lock:
            self._counters["commands"] += 1
            seq = self._seq = self._seq % 0xFFFF + 1  # 1..65535; 0 means "nothing yet"
            ack = await self._handshake(tracking_id, destination, seq, t0)
        if ack.confirmed:
            self._counters["confirmed"] += 1
        else:
            log.warning(
                "%s: carton %d not confirmed: %s", self.config.name, tracking_id, ack.message
            )
            self._note_error(ack.error or ErrorCode.PLC_HANDSHAKE_TIMEOUT, ack.message)
        self._sink(ack)
        return ack

    async def set_stack_light(self, light: StackLight) -> None:
        wanted = {
            addr: bool(getattr(light, name)) for name, addr in self.regs.stack_coils().items()
        }
        await self.write_coils_verified(wanted)

    async def write_coils_verified(self, wanted: dict[int, bool]) -> None:
        """Write coils and read them back; retry what differs; raise PLC_WRITE_FAILED."""
        pending = dict(wanted)
        last = ""
        for attempt in range(self.config.write_retries + 1):
            if attempt:
                await asyncio.sleep(0.05 * 2 ** (attempt - 1))
            try:
                for first_addr, values in _runs(pending):
                    if len(values) == 1:
                        await self._call("write_coil", first_addr, values[0])
                    else:  # contiguous coils (a stack light usually is): one FC15 request
                        await self._call("write_coils", first_addr, values)
                first = min(pending)
                count = max(pending) - first + 1
                bits = (await self._call("read_coils", first, count=count)).bits
                pending = {a: v for a, v in pending.items() if bool(bits[a - first]) != v}
            except PlcError as exc:
                last = exc.message
                continue
            if not pending:
                return
            last = f"read back differs at coils {sorted(pending)}"
        self._counters["write_failures"] += 1
        message = f"coils {sorted(pending)} not confirmed after {attempt + 1} attempts: {last}"
        self._note_error(ErrorCode.PLC_WRITE_FAILED, message)
        raise PlcError(ErrorCode.PLC_WRITE_FAILED, message)

    # -- mailbox ----------------------------------------------------------------------------
    async def _handshake(
        self, tracking_id: int, destination: int, seq: int, t0: float
    ) -> CommandAck:
        h = self.regs.holding
        cfg = self.config

        def ack(confirmed: bool, error: ErrorCode | None = None, message: str = "") -> CommandAck:
            return CommandAck(
                tracking_id, destination, seq, confirmed, time.monotonic() - t0, error, message
            )

        if not self._connected.is_set():
            return ack(
                False,
                ErrorCode.PLC_DISCONNECTED,
                f"PLC not connected; carton {tracking_id} goes to the reject lane",
            )
        words = to_words(tracking_id, self.regs.word_order)
        try:
            if h.destination == h.tracking_id + 2:
                await self._write_regs(h.tracking_id, [*words, destination])
            else:
                await self._write_regs(h.tracking_id, words)
                await self._write_regs(h.destination, [destination])
            await self._write_regs(h.sequence, [seq])  # last: the PLC acts on this
        except PlcError as exc:
            self._counters["write_failures"] += 1
            return ack(
                False,
                exc.code if exc.code == ErrorCode.PLC_DISCONNECTED else ErrorCode.PLC_WRITE_FAILED,
                f"mailbox write failed ({exc.message}); carton goes to the reject lane",
            )
        deadline = t0 + cfg.handshake_timeout_s
        ack_addr = self.regs.input_registers.ack_sequence
        while True:
            with contextlib.suppress(PlcError):
                echoed = (await self._call("read_input_registers", ack_addr, count=1)).registers[0]
                if echoed == seq:
                    return ack(True)
            if time.monotonic() >= deadline:
                self._counters["handshake_timeouts"] += 1
                return ack(
                    False,
                    ErrorCode.PLC_HANDSHAKE_TIMEOUT,
                    f"PLC did not echo sequence {seq} within {cfg.handshake_timeout_s} s; "
                    f"carton {tracking_id} goes to the reject lane",
                )
            await asyncio.sleep(_ACK_POLL_S)

    async def _write_regs(self, address: int, values: list[int]) -> None:
        last: PlcError | None = None
        for attempt in range(self.config.write_retries + 1):
            if attempt:
                await asyncio.sleep(0.02 * 2 ** (attempt - 1))
            try:
                await self._call("write_registers", address, values)
                return
            except PlcError as exc:
                last = exc
        assert last is not None
        raise last

    # -- requests ---------------------------------------------------------------------------
    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One Modbus request (a client method name and its arguments, without the device id),
        every failure mapped to a PlcError with its code."""
        client = self._client
        if client is None or not self._connected.is_set():
            raise PlcError(ErrorCode.PLC_DISCONNECTED, "not connected")
        async with self._io_lock:
            try:
                response = await getattr(client, method)(
                    *args, device_id=self.config.device_id, **kwargs
                )
            except ConnectionException as exc:
                raise self._failed(ErrorCode.PLC_DISCONNECTED, f"connection lost: {exc}") from None
            except (ModbusIOException, TimeoutError) as exc:
                self._counters["timeouts"] += 1
                raise self._failed(
                    ErrorCode.PLC_TIMEOUT, f"no answer within {self.config.timeout_s} s: {exc}"
                ) from None
            except ModbusException as exc:
                raise self._failed(ErrorCode.PLC_EXCEPTION, str(exc)) from None
        if response.isError():
            code = getattr(response, "exception_code", 0)
            self._counters["exceptions"] += 1
            raise self._failed(
                ErrorCode.PLC_EXCEPTION,
                f"exception {code} ({_EXCEPTIONS.get(code, 'unknown')}) from "
                f"device {self.config.device_id}",
            )
        self._failures = 0
        return response

    def _failed(self, code: ErrorCode, message: str) -> PlcError:
        self._failures += 1
        self._note_error(code, message)
        return PlcError(code, message)

    # -- connection supervisor --------------------------------------------------------------
    def _make_client(self) -> Client:
        cfg = self.config
        # pymodbus's own reconnect is off (reconnect_delay=0): this class owns reconnecting.
        if isinstance(cfg, ModbusTcpLineConfig):
            return AsyncModbusTcpClient(
                cfg.host,
                port=cfg.port,
                timeout=cfg.timeout_s,
                retries=0,
                reconnect_delay=0,
                name=cfg.name,
            )
        return AsyncModbusSerialClient(
            cfg.serial_port,
            framer=FramerType.RTU,
            baudrate=cfg.baudrate,
            bytesize=cfg.bytesize,
            parity=cfg.parity,
            stopbits=cfg.stopbits,
            timeout=cfg.timeout_s,
            retries=0,
            reconnect_delay=0,
            name=cfg.name,
        )

    def _drop_client(self) -> None:
        self._connected.clear()
        self._ready.clear()
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _supervise(self) -> None:
        cfg = self.config
        delay = cfg.reconnect_initial_s
        outage_since: float | None = None
        while not self._stopping:
            client = self._make_client()
            connected = False
            with contextlib.suppress(OSError, ModbusException):
                connected = await client.connect()
            if connected:
                self._client, self._failures = client, 0
                self._connected.set()
                try:
                    await self._on_connected(outage_since)
                    outage_since = None
                    await self._poll_loop()
                except _LinkLostError as lost:
                    outage_since = time.monotonic()
                    error, message = lost.error.code, f"link lost: {lost.error.message}"
                except Exception as exc:  # an unattended line must not die on one surprise
                    log.exception("%s: unexpected error; reconnecting", cfg.name)
                    outage_since = time.monotonic()
                    error, message = ErrorCode.PLC_DISCONNECTED, f"unexpected error: {exc!r}"
                finally:
                    healthy = self._ready.is_set()
                    self._drop_client()
                if self._stopping:
                    return
                if healthy:  # it worked for a while: retry soon; else keep backing off
                    delay = cfg.reconnect_initial_s
            else:
                client.close()
                outage_since = outage_since or time.monotonic()
                error, message = ErrorCode.PLC_DISCONNECTED, f"cannot connect to {cfg.endpoint}"
            self._publish(LinkState.DISCONNECTED, error, f"{message}; next try in {delay:g} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, cfg.reconnect_max_s)

    async def _on_connected(self, outage_since: float | None) -> None:
        # Continue the PLC's sequence numbering: after an edge restart the PLC must still see a
        # change when the next command is written.
        try:
            self._seq = (
                await self._call("read_holding_registers", self.regs.holding.sequence, count=1)
            ).registers[0]
        except PlcError as exc:
            raise _LinkLostError(exc) from None
        self._watch.reset()
        if outage_since is None:
            self._publish(LinkState.CONNECTED)
        else:
            self._counters["reconnects"] += 1
            self._publish(
                LinkState.CONNECTED,
                ErrorCode.PLC_DISCONNECTED,
                f"reconnected after a {time.monotonic() - outage_since:.1f} s outage",
            )

    async def _poll_loop(self) -> None:
        cfg = self.config
        next_hb = 0.0
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._poll_once()
                if started >= next_hb:
                    next_hb = started + cfg.heartbeat_interval_s
                    self._edge_hb = (self._edge_hb + 1) & 0xFFFF
                    await self._call(
                        "write_register", self.regs.holding.edge_heartbeat, self._edge_hb
                    )
            except PlcError as exc:
                if exc.code == ErrorCode.PLC_DISCONNECTED or (
                    self._failures >= cfg.failures_before_reconnect
                ):
                    raise _LinkLostError(exc) from None
            self._counters["polls"] += 1
            await asyncio.sleep(max(0.0, cfg.poll_interval_s - (time.monotonic() - started)))

    async def _poll_once(self) -> None:
        regs = self.regs
        di_first, di_count = regs.input_span()
        ir_first, ir_count = regs.input_registers.span()
        # Inputs first, then registers: when the scan eye reads blocked, the tracking id the
        # PLC assigned in the same scan cycle is already in the registers read after it.
        bits = (await self._call("read_discrete_inputs", di_first, count=di_count)).bits
        words = (await self._call("read_input_registers", ir_first, count=ir_count)).registers
        try:
            reading = decode_reading(regs, bits, di_first, words, ir_first, time.monotonic())
        except DockgateError as exc:  # a short answer counts as a failed poll, with its code
            raise self._failed(exc.code, exc.message) from None
        edges, alarm = self._watch.observe(reading)
        self._counters["missed_edges"] = self._watch.missed_edges
        self._ready.set()
        for edge in edges:
            self._sink(edge)
        if alarm:
            self._publish(LinkState.DEGRADED, ErrorCode.PLC_HEARTBEAT_LOST, alarm)
        elif alarm == "":
            self._publish(LinkState.CONNECTED)

    # -- status -----------------------------------------------------------------------------
    def _note_error(self, code: ErrorCode, message: str) -> None:
        self._status = replace(self._status, last_error=code, last_error_message=message)

    def _publish(self, state: LinkState, error: ErrorCode | None = None, message: str = "") -> None:
        previous = self._status
        if error is None:  # keep the last error visible until a new one replaces it
            error, message = previous.last_error, previous.last_error_message
        self._status = ConnectionStatus(
            self.config.name, state, error, message, counters=dict(self._counters)
        )
        if previous.state != state or previous.last_error_message != message:
            log.info("%s: %s %s", self.config.name, state.value, message)
            self._sink(self._status)
