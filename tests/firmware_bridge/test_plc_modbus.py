"""The Modbus PLC adapter against the pymodbus-server simulator on a free port (no mocks):
mailbox handshake, reject on a lost decision, verified writes, timeouts, exceptions,
reconnects, heartbeats both ways, word order, and RTU over a real pty pair."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from edge.contracts.errors import DockgateError, ErrorCode
from firmware_bridge.modbus.config import ModbusRtuLineConfig, ModbusTcpLineConfig
from firmware_bridge.modbus.plc import ModbusLineIO
from firmware_bridge.modbus.regmap import RegisterMap
from firmware_bridge.modbus.sim import FC_HR, PlcSimulator, SimSettings
from firmware_bridge.ports import (
    CommandAck,
    ConnectionStatus,
    LineEvent,
    LinkState,
    PhotoEyeEdge,
    StackLight,
)

RunAsync = Callable[[Callable[[], Coroutine[Any, Any, Any]]], Any]


class Events(list[LineEvent]):
    """Events in arrival order; each wait starts after the event the previous wait matched."""

    cursor = 0

    async def wait_for(self, pred: Callable[[LineEvent], bool], timeout: float = 5) -> LineEvent:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index in range(self.cursor, len(self)):
                if pred(self[index]):
                    self.cursor = index + 1
                    return self[index]
            await asyncio.sleep(0.01)
        raise AssertionError(f"not seen in {timeout}s; events: {self[-5:]}")

    async def state(self, state: LinkState, timeout: float = 5) -> ConnectionStatus:
        event = await self.wait_for(
            lambda e: isinstance(e, ConnectionStatus) and e.state == state, timeout
        )
        assert isinstance(event, ConnectionStatus)
        return event

    async def scan_edge(self) -> PhotoEyeEdge:
        edge = await self.wait_for(lambda e: isinstance(e, PhotoEyeEdge) and e.name == "scan")
        assert isinstance(edge, PhotoEyeEdge)
        return edge


def tcp_config(port: int, **overrides: Any) -> ModbusTcpLineConfig:
    fields: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "timeout_s": 0.3,
        "handshake_timeout_s": 0.3,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.2,
        "heartbeat_interval_s": 0.1,
        "plc_heartbeat_timeout_s": 0.5,
    }
    fields.update(overrides)
    return ModbusTcpLineConfig.model_validate(fields)


@asynccontextmanager
async def rig(
    port: int, settings: SimSettings | None = None, regs: RegisterMap | None = None, **cfg: Any
) -> AsyncIterator[tuple[PlcSimulator, ModbusLineIO, Events]]:
    sim = PlcSimulator(regs, settings or SimSettings(travel_s=0.4))
    await sim.start_tcp(port=port)
    events = Events()
    config = tcp_config(port, **cfg) if regs is None else tcp_config(port, registers=regs, **cfg)
    io = ModbusLineIO(config, events.append)
    await io.start()
    try:
        assert await io.wait_connected(5)
        yield sim, io, events
    finally:
        await io.stop()
        await sim.stop()


async def settle(sim: PlcSimulator, count: int, timeout: float = 3) -> None:
    deadline = time.monotonic() + timeout
    while len(sim.gate_log) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(sim.gate_log) >= count, sim.gate_log


def test_photo_eye_command_and_divert(port: int, run_async: RunAsync) -> None:
    async def body() -> None:
        async with rig(port) as (sim, io, events):
            tracking_id = await sim.inject_carton()
            edge = await events.scan_edge()
            assert edge.blocked and edge.tracking_id == tracking_id
            ack = await io.send_sort_command(tracking_id, 2)
            assert ack.confirmed and ack.error is None and ack.sequence == sim.taken_sequences[-1]
            assert ack in events
            await settle(sim, 1)
            gate = sim.gate_log[0]
            assert (gate.tracking_id, gate.gate, gate.destination) == (tracking_id, "diverter", 2)
            assert await sim.coil(sim.regs.coils.diverters[1])  # pulse still on
            await events.wait_for(
                lambda e: isinstance(e, PhotoEyeEdge) and e.name == "scan" and not e.blocked
            )
            assert io.status().counters["confirmed"] == 1

    run_async(body)


def test_handshake_timeout_sends_the_carton_to_reject(port: int, run_async: RunAsync) -> None:
    async def body() -> None:
        async with rig(port) as (sim, io, _events):
            sim.echo_commands = False  # PLC program stalled: mailbox never taken
            tracking_id = await sim.inject_carton()
            ack = await io.send_sort_command(tracking_id, 1)
            assert not ack.confirmed and ack.error == ErrorCode.PLC_HANDSHAKE_TIMEOUT
            assert 0.3 <= ack.latency_s < 1.0
            await settle(sim, 1)
            assert sim.gate_log[0].gate == "reject"
            assert sim.gate_log[0].reason == "no confirmed command"
            assert not await sim.coil(sim.regs.coils.diverters[0])
            status = io.status()
            assert status.last_error == ErrorCode.PLC_HANDSHAKE_TIMEOUT
            assert status.counters["handshake_timeouts"] == 1

    run_async(body)


def test_missing_zero_and_unknown_destinations_are_rejected(port: int, run_async: RunAsync) -> None:
    async def body() -> None:
        async with rig(port) as (sim, io, _):
            no_command = await sim.inject_carton()
            zero = await sim.inject_carton()
            unknown = await sim.inject_carton()
            good = await sim.inject_carton()
            for tracking_id, dest in ((zero, 0), (unknown, 9), (good, 3)):
                assert (await io.send_sort_command(tracking_id, dest)).confirmed
            await settle(sim, 4)
            by_id = {g.tracking_id: g for g in sim.gate_log}
            assert by_id[no_command].reason == "no confirmed command"
            assert by_id[zero].gate == "reject" and by_id[unknown].gate == "reject"
            assert "unknown destination" in by_id[unknown].reason
            assert (by_id[good].gate, by_id[good].destination) == ("diverter", 3)

    run_async(body)


def test_cdab_word_order_for_32_bit_tracking_ids(port: int, run_async: RunAsync) -> None:
    async def body() -> None:
        regs = RegisterMap(word_order="CDAB")
        async with rig(port, regs=regs) as (sim, io, events):
            sim._next_id = 0x0001_2345  # beyond 16 bits
            tracking_id = await sim.inject_carton()
            assert (await events.scan_edge()).tracking_id == 0x12345
            assert (await io.send_sort_command(tracking_id, 1)).confirmed
            assert await sim.get(FC_HR, regs.holding.tracking_id, 2) == [0x2345, 0x0001]
            await settle(sim, 1)
            assert sim.gate_log[0].gate == "diverter"

    run_async(body)


def test_stack_light_writes_are_verified_and_retried(port: int, run_async: RunAsync) -> None:
    async def body() -> None:
        async with rig(port) as (sim, io, _):
            coils = sim.regs.stack_coils()
            sim.failing_coils[coils["yellow"]] = 1  # one exception response, then fine
            await io.set_stack_light(StackLight.for_condition("abnormal"))
            assert [await sim.coil(a) for a in coils.values()] == [0, 1, 0, 0, 0]
            sim.stuck_coils.add(coils["red"])  # answers OK, does not stick
            with pytest.raises(DockgateError) as err:
                await io.set_stack_light(StackLight.for_condition("fault"))
            assert err.value.code == ErrorCode.PLC_WRITE_FAILED
            assert str(coils["red"]) in err.value.message
            status = io.status()
            assert status.last_error == ErrorCode.PLC_WRITE_FAILED
            assert status.counters["write_failures"] == 1 and status.counters["exceptions"] == 1

    run_async(body)


def test_wrong_device_id_reports_plc_exception(port: int, run_async: RunAsync) -> None:
    async def body() -> None:
        sim = PlcSimulator()
        await sim.start_tcp(port=port)
        events = Events()
        io = ModbusLineIO(tcp_config(port, device_id=7), events.append)
        await io.start()
        try:
            down = await events.wait_for(
                lambda e: (
                    isinstance(e, ConnectionStatus)
                    and e.state == LinkState.DISCONNECTED
                    and e.last_error == ErrorCode.PLC_EXCEPTION
                )
            )
            assert isinstance(down, ConnectionStatus) and "device 7" in down.last_error_message
            ack = await io.send_sort_command(1, 1)
            assert not ack.confirmed and ack.error == ErrorCode.PLC_DISCONNECTED
        finally:
            await io.stop()
            await sim.stop()

    run_async(body)


def test_server_stop_and_restart_reconnects(port: int, run_async: RunAsync) -> None:
    async def body() -> None:
        sim = PlcSimulator(settings=SimSettings(travel_s=0.4))
        await sim.start_tcp(port=port)
        events = Events()
        io = ModbusLineIO(tcp_config(port), events.append)
        await io.start()
        try:
            assert await io.wait_connected(5)
            await sim.stop()
            down = await events.state(LinkState.DISCONNECTED)
            assert down.last_error == ErrorCode.PLC_DISCONNECTED
            ack = await io.send_sort_command(5, 1)
            assert ack.error == ErrorCode.PLC_DISCONNECTED and not ack.confirmed
            await asyncio.sleep(0.5)  # a few refused connects with backoff
            sim = PlcSimulator(settings=SimSettings(travel_s=0.4))
            await sim.start_tcp(port=port)
            waits = [
                float(e.last_error_message.rsplit("next try in ", 1)[1].split()[0])
                for e in events
                if isinstance(e, ConnectionStatus) and "next try in" in e.last_error_message
            ]
            assert waits[:3] == [0.05, 0.1, 0.2] and max(waits) == 0.2  # doubling, capped
            up = await events.state(LinkState.CONNECTED)
            assert "outage" in up.last_error_message
            assert await io.wait_connected(5)
            tracking_id = await sim.inject_carton()
            assert (await io.send_sort_command(tracking_id, 1)).confirmed
            assert io.status().counters["reconnects"] == 1
        finally:
            await io.stop()
            await sim.stop()

    run_async(body)


def test_slow_plc_gives_timeouts_then_recovers(port: int, run_async: RunAsync) -> None:
    async def body() -> None:
        async with rig(port, timeout_s=0.1, failures_before_reconnect=2) as (sim, io, events):
            sim.response_delay_s = 0.25
            down = await events.state(LinkState.DISCONNECTED)
            assert down.last_error == ErrorCode.PLC_TIMEOUT
            assert io.status().counters["timeouts"] >= 2
            sim.response_delay_s = 0.0
            await events.state(LinkState.CONNECTED)
            assert await io.wait_connected(5)

    run_async(body)


def test_heartbeats_both_ways(port: int, run_async: RunAsync) -> None:
    async def body() -> None:
        settings = SimSettings(travel_s=0.2, edge_heartbeat_timeout_s=0.8)
        async with rig(port, settings) as (sim, io, events):
            sim.heartbeat_running = False  # PLC program stopped, Modbus still answers
            degraded = await events.state(LinkState.DEGRADED)
            assert degraded.last_error == ErrorCode.PLC_HEARTBEAT_LOST
            assert "PLC heartbeat" in degraded.last_error_message
            sim.heartbeat_running = True
            await events.state(LinkState.CONNECTED)
            assert not sim.failsafe  # the edge kept bumping its heartbeat
        # Edge gone (adapter stopped): the PLC trips its fail-safe and rejects everything.
        sim = PlcSimulator(settings=settings)
        await sim.start_tcp(port=port)
        events = Events()
        io = ModbusLineIO(tcp_config(port, heartbeat_interval_s=5), events.append)
        await io.start()
        try:
            degraded = await events.state(LinkState.DEGRADED)
            assert "fail-safe" in degraded.last_error_message
            tracking_id = await sim.inject_carton()
            assert (await io.send_sort_command(tracking_id, 1)).confirmed
            await settle(sim, 1)
            assert sim.gate_log[0].gate == "reject" and "fail-safe" in sim.gate_log[0].reason
        finally:
            await io.stop()
            await sim.stop()

    run_async(body)


def test_pulses_shorter_than_the_poll_are_counted(port: int, run_async: RunAsync) -> None:
    async def body() -> None:
        settings = SimSettings(travel_s=0.5, pe_pulse_s=0.01)
        async with rig(port, settings, poll_interval_s=0.3) as (sim, io, events):
            await asyncio.sleep(0.35)
            await sim.inject_carton()
            last = await sim.inject_carton()
            edge = await events.scan_edge()
            assert edge.tracking_id == last
            assert io.status().counters["missed_edges"] == 1

    run_async(body)


def test_rtu_over_a_pty_pair(tmp_path: Path, run_async: RunAsync) -> None:
    # socat links two ptys (make test installs it): one end for the PLC, one for the edge.
    plc_end, edge_end = tmp_path / "plc", tmp_path / "edge"
    socat = subprocess.Popen(
        [
            "socat",
            f"pty,raw,echo=0,link={plc_end}",
            f"pty,raw,echo=0,link={edge_end}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not (plc_end.exists() and edge_end.exists()) and time.monotonic() < deadline:
            time.sleep(0.02)

        async def body() -> None:
            sim = PlcSimulator(settings=SimSettings(travel_s=0.5))
            # A pty has no parity generator: both ends 8N1 here (the config default is 8E1).
            await sim.start_rtu(str(plc_end), baudrate=115200, parity="N")
            events = Events()
            config = ModbusRtuLineConfig(
                serial_port=str(edge_end),
                baudrate=115200,
                parity="N",
                timeout_s=0.5,
                poll_interval_s=0.05,
                reconnect_initial_s=0.05,
            )
            io = ModbusLineIO(config, events.append)
            await io.start()
            try:
                assert await io.wait_connected(5)
                tracking_id = await sim.inject_carton()
                assert (await events.scan_edge()).tracking_id == tracking_id
                assert (await io.send_sort_command(tracking_id, 2)).confirmed
                await settle(sim, 1)
                assert sim.gate_log[0].destination == 2
            finally:
                await io.stop()
                await sim.stop()

        run_async(body)
    finally:
        socat.terminate()
        socat.wait(timeout=5)


def test_command_ack_is_a_value() -> None:
    ack = CommandAck(1, 2, 3, True, 0.01)
    assert ack.ts.endswith("Z") and ack.error is None


def test_stop_is_prompt_while_the_plc_is_unreachable(port: int, run_async: RunAsync) -> None:
    async def body() -> None:
        events = Events()
        io = ModbusLineIO(tcp_config(port, reconnect_initial_s=5, reconnect_max_s=5), events.append)
        await io.start()
        down = await events.state(LinkState.DISCONNECTED)
        assert down.last_error == ErrorCode.PLC_DISCONNECTED and "cannot connect" in (
            down.last_error_message
        )
        started = time.monotonic()
        await io.stop()
        assert time.monotonic() - started < 1.0
        assert io.status().state == LinkState.STOPPED

    run_async(body)


def test_mailbox_write_retried_then_reported(port: int, run_async: RunAsync) -> None:
    async def body() -> None:
        async with rig(port, write_retries=2) as (sim, io, _):
            sequence = sim.regs.holding.sequence
            sim.failing_registers[sequence] = 2  # busy twice, the third attempt lands
            first = await sim.inject_carton()
            assert (await io.send_sort_command(first, 1)).confirmed
            sim.failing_registers[sequence] = 3  # busy on every attempt
            second = await sim.inject_carton()
            ack = await io.send_sort_command(second, 2)
            assert not ack.confirmed and ack.error == ErrorCode.PLC_WRITE_FAILED
            assert "exception 6" in ack.message
            await settle(sim, 2)
            assert [(g.gate, g.destination) for g in sim.gate_log] == [
                ("diverter", 1),
                ("reject", 0),
            ]
            assert io.status().last_error == ErrorCode.PLC_WRITE_FAILED

    run_async(body)
