"""``dockgate sim``: device simulators for tests and the demo, each loaded only when used."""

from __future__ import annotations

import click

from edge.cli import LazyGroup

# name -> ("module:attribute", one-line help); each simulator registers itself here.
SIMULATORS: dict[str, tuple[str, str]] = {
    "agv": ("edge.agv.sim:agv", "Simulated AGVs speaking VDA 5050 2.1 over MQTT (--count N)."),
    "plc": ("firmware_bridge.sim_cli:plc", "Sorting-line PLC on a Modbus TCP/RTU server."),
    "scanner": ("firmware_bridge.sim_cli:scanner", "Serial barcode scanner on a pty."),
}


@click.group(cls=LazyGroup, commands_map=SIMULATORS)
def sim() -> None:
    """Device simulators (AGVs over VDA 5050, the sorting-line PLC over Modbus, a serial scanner)
    for tests and the demo. Each runs in the foreground until Ctrl-C."""
