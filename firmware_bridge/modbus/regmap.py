"""The sorting line's Modbus register and coil map, as configuration.

There is no standard map for sorting lines. The default below is the one proposed in the
research notes (to be agreed with the line integrator); every address can be changed in the
node config. Addresses are 0-based PDU addresses (holding register 0 is "40001").

=================  =====  =========================================================
table              addr   meaning (default map)
=================  =====  =========================================================
discrete inputs    0      photo-eye ``scan``: carton at the camera/scanner
                   1-3    photo-eyes ``pre_divert_1..3``: carton at diverter n
                   8      line running
                   9      e-stop circuit OK
coils              0-2    diverter 1..3 fire (the PLC pulses them; readable by the edge)
                   8      reject gate
                   16-19  stack light red, yellow, green, blue (IEC 60204-1); 20 buzzer
holding (edge→PLC) 0-1    mailbox: carton tracking id (32 bit)
                   2      mailbox: destination (chute 1..n; 0 = reject)
                   3      mailbox: command sequence number (bumped last)
                   10     edge heartbeat (incremented by the edge)
input (PLC→edge)   0      PLC heartbeat (incremented by the PLC)
                   1      acknowledged command sequence (the PLC's echo)
                   2      status word (bit 0 running, 1 fault, 2 edge heartbeat lost → fail-safe)
                   3-4    tracking id of the carton last seen at the scan photo-eye (32 bit)
                   5-6    cartons diverted (32 bit); 7-8 cartons rejected (32 bit)
=================  =====  =========================================================
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge.contracts.settings import StrictModel

Address = int
WordOrder = Literal["ABCD", "CDAB"]

STATUS_RUNNING = 1 << 0
STATUS_FAULT = 1 << 1
STATUS_FAILSAFE = 1 << 2


def _addr(default: int, what: str) -> int:
    return Field(default, ge=0, le=65535, description=what)


class Inputs(StrictModel):
    """Discrete inputs the edge reads."""

    photo_eyes: dict[str, Address] = Field(
        default_factory=lambda: {
            "scan": 0,
            "pre_divert_1": 1,
            "pre_divert_2": 2,
            "pre_divert_3": 3,
        },
        description="photo-eye name -> discrete input; 'scan' triggers the camera capture",
    )
    line_running: Address = _addr(8, "discrete input: line running")
    estop_ok: Address = _addr(9, "discrete input: e-stop circuit healthy")

    @model_validator(mode="after")
    def _has_scan_eye(self) -> Inputs:
        if "scan" not in self.photo_eyes:
            raise ValueError("photo_eyes needs a 'scan' entry (the eye that triggers the camera)")
        return self


class Coils(StrictModel):
    """Outputs. Diverters and the reject gate are fired by the PLC; the edge drives the lamps."""

    diverters: list[Address] = Field(
        default_factory=lambda: [0, 1, 2],
        min_length=1,
        max_length=64,
        description="coil per diverter; destination n fires diverters[n-1]",
    )
    reject_gate: Address = _addr(8, "coil: reject gate")
    # -1 marks a lamp that is not fitted (TOML has no null).
    stack_red: int = Field(16, ge=-1, le=65535, description="coil: red lamp (fault); -1 = none")
    stack_yellow: int = Field(
        17, ge=-1, le=65535, description="coil: yellow lamp (abnormal); -1 = none"
    )
    stack_green: int = Field(
        18, ge=-1, le=65535, description="coil: green lamp (normal); -1 = none"
    )
    stack_blue: int = Field(
        19, ge=-1, le=65535, description="coil: blue lamp (action needed); -1 = none"
    )
    buzzer: int = Field(20, ge=-1, le=65535, description="coil: buzzer; -1 = none")


class Holding(StrictModel):
    """Holding registers the edge writes: the command mailbox and its heartbeat."""

    tracking_id: Address = _addr(0, "first of two registers: carton tracking id (32 bit)")
    destination: Address = _addr(2, "register: destination chute (0 = reject)")
    sequence: Address = _addr(3, "register: command sequence, written last")
    edge_heartbeat: Address = _addr(10, "register: edge heartbeat counter")


class InputRegs(StrictModel):
    """Input registers the PLC publishes."""

    plc_heartbeat: Address = _addr(0, "register: PLC heartbeat counter")
    ack_sequence: Address = _addr(1, "register: last command sequence the PLC took")
    status: Address = _addr(2, "register: status word (bit0 running, bit1 fault, bit2 fail-safe)")
    scan_tracking_id: Address = _addr(3, "first of two: tracking id at the scan photo-eye")
    diverted: Address = _addr(5, "first of two: cartons diverted (32 bit)")
    rejected: Address = _addr(7, "first of two: cartons rejected (32 bit)")

    def span(self) -> tuple[int, int]:
        """(first address, count) covering every input register, for one read request."""
        starts = [self.plc_heartbeat, self.ack_sequence, self.status]
        doubles = [self.scan_tracking_id, self.diverted, self.rejected]
        first = min(starts + doubles)
        last = max([*starts, *(d + 1 for d in doubles)])
        return first, last - first + 1


class RegisterMap(StrictModel):
    """The whole map; addresses may not overlap within a table."""

    word_order: WordOrder = Field(
        "ABCD", description="32-bit values: ABCD = high word first, CDAB = low word first"
    )
    inputs: Inputs = Field(default_factory=Inputs, description="discrete inputs")
    coils: Coils = Field(default_factory=Coils, description="coils")
    holding: Holding = Field(default_factory=Holding, description="holding registers")
    input_registers: InputRegs = Field(default_factory=InputRegs, description="input registers")

    @model_validator(mode="after")
    def _no_overlap(self) -> RegisterMap:
        h, i, c = self.holding, self.input_registers, self.coils
        tables = {
            "inputs": [
                *self.inputs.photo_eyes.values(),
                self.inputs.line_running,
                self.inputs.estop_ok,
            ],
            "coils": [*c.diverters, c.reject_gate]
            + [
                a
                for a in (c.stack_red, c.stack_yellow, c.stack_green, c.stack_blue, c.buzzer)
                if a >= 0
            ],
            "holding": [
                h.tracking_id,
                h.tracking_id + 1,
                h.destination,
                h.sequence,
                h.edge_heartbeat,
            ],
            "input_registers": [
                i.plc_heartbeat,
                i.ack_sequence,
                i.status,
                i.scan_tracking_id,
                i.scan_tracking_id + 1,
                i.diverted,
                i.diverted + 1,
                i.rejected,
                i.rejected + 1,
            ],
        }
        for name, addresses in tables.items():
            if len(set(addresses)) != len(addresses):
                raise ValueError(f"{name}: two signals share an address")
        if i.span()[1] > 125:
            raise ValueError("input registers must fit one read (span of at most 125)")
        return self

    def input_span(self) -> tuple[int, int]:
        """(first address, count) covering every discrete input, for one read request."""
        addresses = [
            *self.inputs.photo_eyes.values(),
            self.inputs.line_running,
            self.inputs.estop_ok,
        ]
        return min(addresses), max(addresses) - min(addresses) + 1

    def stack_coils(self) -> dict[str, Address]:
        """Lamp name -> coil, for the lamps that are fitted."""
        c = self.coils
        named = {
            "red": c.stack_red,
            "yellow": c.stack_yellow,
            "green": c.stack_green,
            "blue": c.stack_blue,
            "buzzer": c.buzzer,
        }
        return {name: addr for name, addr in named.items() if addr >= 0}


def to_words(value: int, order: WordOrder) -> list[int]:
    """A 32-bit unsigned value as two registers in the configured word order."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{value} does not fit 32 bits")
    high, low = value >> 16, value & 0xFFFF
    return [high, low] if order == "ABCD" else [low, high]


def from_words(words: list[int], order: WordOrder) -> int:
    """Inverse of :func:`to_words`."""
    first, second = words[0], words[1]
    high, low = (first, second) if order == "ABCD" else (second, first)
    return (high << 16) | low
