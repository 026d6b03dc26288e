"""``dockgate sim plc`` and ``dockgate sim scanner``: the line simulators in the foreground.

Both stop cleanly on Ctrl-C (SIGINT) or SIGTERM: the Modbus server closes its connections,
the pty closes and its link is removed.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import click
from pydantic import ValidationError

from edge.contracts.settings import describe_validation_error, read_toml
from firmware_bridge.modbus.regmap import RegisterMap
from firmware_bridge.modbus.sim import GateAction, PlcSimulator, SimSettings
from firmware_bridge.serial.config import SerialScannerConfig, profiles
from firmware_bridge.serial.sim import ScannerSimulator, carton_read


def _register_map(config: Path | None) -> RegisterMap:
    if config is None:
        return RegisterMap()
    section = read_toml(config).get("line_io", {})
    try:
        return RegisterMap.model_validate(section.get("registers", {}))
    except ValidationError as exc:
        problem = describe_validation_error(RegisterMap, exc)
        raise click.BadParameter(f"line_io.registers.{problem}", param_hint="--config") from None


@click.command("plc")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=5020, show_default=True, type=click.IntRange(1, 65535))
@click.option("--rtu", "rtu_port", default=None, help="serve Modbus RTU on this serial device")
@click.option("--baud", default=19200, show_default=True, type=int, help="RTU line speed")
@click.option("--parity", default="E", show_default=True, type=click.Choice(["N", "E", "O"]))
@click.option("--device-id", default=1, show_default=True, type=click.IntRange(1, 247))
@click.option(
    "--rate",
    default=1200.0,
    show_default=True,
    type=click.FloatRange(0, 36000),
    help="cartons per hour breaking the scan photo-eye (0: none)",
)
@click.option(
    "--travel",
    default=1.5,
    show_default=True,
    type=click.FloatRange(0.05, 60),
    help="seconds from the scan photo-eye to the diverter",
)
@click.option(
    "--edge-heartbeat-timeout",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0, 60),
    help="seconds without an edge heartbeat before the fail-safe (0: off)",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="edge config whose [line_io.registers] map to serve (default: the built-in map)",
)
def plc(
    host: str,
    port: int,
    rtu_port: str | None,
    baud: int,
    parity: str,
    device_id: int,
    rate: float,
    travel: float,
    edge_heartbeat_timeout: float,
    config_path: Path | None,
) -> None:
    """Simulate the sorting-line PLC on a pymodbus server (Modbus TCP, or RTU with --rtu).

    Cartons break the scan photo-eye at --rate, get a tracking id, and reach the diverter after
    --travel seconds. A carton without a taken command (mailbox handshake) goes to the reject
    lane. Every gate action is printed. Runs until Ctrl-C.
    """
    settings = SimSettings(
        device_id=device_id,
        rate_per_hour=rate,
        travel_s=travel,
        edge_heartbeat_timeout_s=edge_heartbeat_timeout,
    )

    def show(action: GateAction) -> None:
        where = f"chute {action.destination}" if action.gate == "diverter" else "REJECT"
        click.echo(f"carton {action.tracking_id:>6} -> {where:<8} ({action.reason})")

    async def run() -> None:
        sim = PlcSimulator(_register_map(config_path), settings, on_gate=show)
        if rtu_port:
            await sim.start_rtu(rtu_port, baudrate=baud, parity=parity)
            where = f"Modbus RTU on {rtu_port} ({baud} 8{parity}1)"
        else:
            await sim.start_tcp(host, port)
            where = f"Modbus TCP on {host}:{port}"
        click.echo(
            f"PLC simulator: {where}, device id {device_id}, {rate:g} cartons/h. Ctrl-C stops."
        )
        await _until_signalled()
        await sim.stop()
        click.echo(f"stopped after {len(sim.gate_log)} cartons")

    asyncio.run(run())


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@click.command("scanner")
@click.option(
    "--link",
    default="dockgate-scanner",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="stable path to publish the pty under (configure it as scanner.port)",
)
@click.option(
    "--profile",
    default="generic",
    show_default=True,
    type=click.Choice(sorted(profiles())),
    help="scanner profile (firmware_bridge/serial/profiles.toml)",
)
@click.option(
    "--rate",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, 6000),
    help="carton label reads per minute (0: only on trigger)",
)
@click.option(
    "--garbage-every",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="send a line-noise frame after every N reads (0: never)",
)
@click.option(
    "--unplug-every",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="pull the cable every N seconds for 2 s (0: never)",
)
def scanner(link: Path, profile: str, rate: float, garbage_every: int, unplug_every: float) -> None:
    """Simulate a serial barcode scanner on a pseudo-terminal and print its path.

    Sends GS1-128 carton label reads (]C1, SSCC, GS, lot) framed as the profile says, answers
    the profile's software trigger, and can inject garbage and unplug the port. Runs until
    Ctrl-C; the link is removed on exit.
    """
    cfg = SerialScannerConfig(port=str(link), profile=profile, trigger="software")
    trigger_on, _ = cfg.trigger_bytes()
    ack = bytes.fromhex(cfg.resolved_profile.ack)
    sim = ScannerSimulator(link.absolute(), cfg.frame_spec(), trigger_on=trigger_on, ack=ack)
    device = sim.plug()
    sim.answer_triggers(carton_read(1))
    click.echo(
        f"scanner simulator ({profile}): {device}, linked as {link.absolute()}. Ctrl-C stops."
    )
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        _feed(sim, stop, rate, garbage_every, unplug_every)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sim.close()
        click.echo(f"stopped; {sim.triggers} triggers answered")


def _feed(
    sim: ScannerSimulator,
    stop: threading.Event,
    rate: float,
    garbage_every: int,
    unplug_every: float,
) -> None:
    period = 60.0 / rate if rate else 0.5
    next_unplug = time.monotonic() + unplug_every if unplug_every else float("inf")
    sent = 0
    while not stop.wait(period):
        if time.monotonic() >= next_unplug:
            click.echo("unplugged")
            sim.unplug()
            if stop.wait(2.0):
                return
            click.echo(f"plugged in again: {sim.plug()}")
            next_unplug = time.monotonic() + unplug_every
        if not rate:
            continue
        sent += 1
        sim.send_read(*carton_read(sent))
        if garbage_every and sent % garbage_every == 0:
            sim.send(sim.garbage())
