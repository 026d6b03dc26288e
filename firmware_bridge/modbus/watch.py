"""Turning polled PLC inputs into facts: photo-eye edges and the heartbeat watchdog.

Pure (no I/O, time passed in), so the edge and watchdog rules are tested without a PLC.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.contracts.errors import DockgateError, ErrorCode
from firmware_bridge.modbus.regmap import STATUS_FAILSAFE, RegisterMap, from_words
from firmware_bridge.ports import PhotoEyeEdge


@dataclass(frozen=True)
class Reading:
    """One poll: photo-eyes, the scan tracking id, PLC heartbeat and status word."""

    eyes: dict[str, bool]
    scan_id: int
    plc_heartbeat: int
    status_word: int
    at: float


def decode_reading(
    regs: RegisterMap, bits: list[bool], di_first: int, words: list[int], ir_first: int, at: float
) -> Reading:
    """Build a :class:`Reading` from one discrete-input read and one input-register read.

    Raises ``PLC_EXCEPTION`` when a response carries fewer values than the map needs: pymodbus
    takes the byte count from the response, so a faulty PLC or gateway can answer short.
    """
    ir = regs.input_registers
    di_need = regs.input_span()[1]
    ir_need = ir.span()[1]
    if len(bits) < di_need or len(words) < ir_need:
        raise DockgateError(
            ErrorCode.PLC_EXCEPTION,
            f"short response: {len(bits)}/{di_need} inputs, {len(words)}/{ir_need} registers",
        )

    def reg(addr: int) -> int:
        return int(words[addr - ir_first])

    return Reading(
        eyes={name: bool(bits[a - di_first]) for name, a in regs.inputs.photo_eyes.items()},
        scan_id=from_words(
            [reg(ir.scan_tracking_id), reg(ir.scan_tracking_id + 1)], regs.word_order
        ),
        plc_heartbeat=reg(ir.plc_heartbeat),
        status_word=reg(ir.status),
        at=at,
    )


class LineWatch:
    """Edge detection and heartbeat watchdog over successive readings."""

    def __init__(self, heartbeat_timeout_s: float) -> None:
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.missed_edges = 0
        self.alarm = ""
        self._last: Reading | None = None
        self._hb_changed_at = 0.0

    def reset(self) -> None:
        """Forget the baseline (after a reconnect the next reading is not an edge)."""
        self._last = None
        self.alarm = ""

    def observe(self, reading: Reading) -> tuple[list[PhotoEyeEdge], str | None]:
        """Edges since the previous reading, and the new alarm text if it changed
        (``""`` = cleared, ``None`` = unchanged)."""
        last, self._last = self._last, reading
        if last is None or last.plc_heartbeat != reading.plc_heartbeat:
            self._hb_changed_at = reading.at
        edges = [] if last is None else self._edges(last, reading)
        alarm = self._alarm(reading)
        changed = alarm if alarm != self.alarm else None
        self.alarm = alarm
        return edges, changed

    def _edges(self, last: Reading, now: Reading) -> list[PhotoEyeEdge]:
        edges: list[PhotoEyeEdge] = []
        # The scan eye's rising edge comes from the PLC's tracking id, so a carton whose pulse
        # fell between two polls is still reported; skipped ids are counted as missed edges.
        if now.scan_id != last.scan_id:
            gap = (now.scan_id - last.scan_id) & 0xFFFFFFFF
            self.missed_edges += gap - 1
            edges.append(PhotoEyeEdge("scan", True, now.scan_id))
        for name, blocked in now.eyes.items():
            if blocked == last.eyes.get(name) or (name == "scan" and blocked):
                continue
            edges.append(PhotoEyeEdge(name, blocked, now.scan_id if name == "scan" else None))
        return edges

    def _alarm(self, reading: Reading) -> str:
        if reading.at - self._hb_changed_at > self.heartbeat_timeout_s:
            return "PLC heartbeat stopped"
        if reading.status_word & STATUS_FAILSAFE:
            return "PLC reports the edge heartbeat lost (fail-safe: every carton to reject)"
        return ""
