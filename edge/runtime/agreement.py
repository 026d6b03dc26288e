"""OCR versus scanner: the fixed scanner's read of a carton is the ground truth for the camera.

Each scanner read is paired with the OCR read of the same carton and recorded as a signed
``scan-read`` ledger observation (what the scanner said, what the OCR said, whether they agree),
and the agreement rate is kept per OCR model version: the OTA rollout's health gate compares it
between the canary version and the one it replaces.

Pairing. The scanner reads when the carton passes it; the OCR read arrives a few hundred
milliseconds later, after inference, and at two cartons a second several reads share a window.
A scan and a read with the same code within ``window_s`` are paired at once (in either order).
When a scan's window closes without one, it is paired with the nearest unpaired read in time
(the same carton, read wrongly, unless the line is bunched) or recorded unpaired; a read without
a scan is not recorded here (the carton was not scanned). Only reads the OCR ACCEPTED count
towards the rate: a REVIEW or UNREADABLE read is not a wrong read.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge.codes.scan import parse_scan
from edge.runtime.bus import Bus, Subscription
from edge.runtime.carton import CARTON_TOPIC, CartonEvent
from edge.runtime.supervisor import Worker

log = logging.getLogger(__name__)

COMPARED = ("gtin", "lot", "expiry", "sscc")
SCAN_TOPIC = "scan"


@dataclass(frozen=True)
class _Scan:
    t: float
    symbology: str | None
    raw: str
    fields: dict[str, str]
    errors: tuple[str, ...]


@dataclass(frozen=True)
class _Read:
    t: float
    carton_id: str
    status: str
    fields: dict[str, str]
    model: str | None


@dataclass
class VersionStats:
    both_read: int = 0
    agreed: int = 0

    @property
    def rate(self) -> float | None:
        return self.agreed / self.both_read if self.both_read else None


@dataclass
class AgreementTracker:
    """Pairs scans with OCR reads; ``record`` receives one JSON-ready dict per scan."""

    record: Callable[[dict[str, Any]], None]
    window_s: float = 3.0
    on_pair: Callable[[str, bool], None] | None = None  # (model version, agreed): for metrics
    clock: Callable[[], float] = time.monotonic
    stats: dict[str, VersionStats] = field(default_factory=dict)
    _scans: deque[_Scan] = field(default_factory=deque)
    _reads: deque[_Read] = field(default_factory=deque)

    def on_scan(self, symbology: str | None, data: str) -> None:
        parsed = parse_scan((symbology or "") + data)
        fields = {k: _text(v) for k, v in parsed.fields.items() if k in COMPARED}
        self._scans.append(
            _Scan(self.clock(), symbology, data, fields, tuple(e.message for e in parsed.errors))
        )
        self._match()

    def on_read(self, event: CartonEvent) -> None:
        fields = {k: v for k, v in event.fields.items() if k in COMPARED}
        self._reads.append(
            _Read(self.clock(), event.carton_id, event.status, fields, event.ocr_model)
        )
        self._match()

    def expire(self) -> None:
        """Close the window of old scans: pair each with the nearest unpaired read in time (a
        misread), or record it unpaired; forget reads no scan can still claim."""
        now = self.clock()
        while self._scans and now - self._scans[0].t > self.window_s:
            scan = self._scans.popleft()
            near = [r for r in self._reads if abs(r.t - scan.t) <= self.window_s]
            read = min(near, key=lambda r: abs(r.t - scan.t)) if near else None
            if read is not None:
                self._reads.remove(read)
            self._emit(scan, read)
        while self._reads and now - self._reads[0].t > 2 * self.window_s:
            self._reads.popleft()

    def rates(self) -> dict[str, VersionStats]:
        return dict(self.stats)

    # pairing -----------------------------------------------------------------------------------
    def _match(self) -> None:
        """Pair every scan that has a read with the same code within the window, now."""
        for scan in list(self._scans):
            same = [
                r
                for r in self._reads
                if abs(r.t - scan.t) <= self.window_s and _agrees(scan.fields, r.fields)
            ]
            if same:
                read = min(same, key=lambda r: abs(r.t - scan.t))
                self._scans.remove(scan)
                self._reads.remove(read)
                self._emit(scan, read)

    def _emit(self, scan: _Scan, read: _Read | None) -> None:
        agree: bool | None = None
        if read is not None and read.status == "ACCEPTED" and scan.fields and not scan.errors:
            agree = _agrees(scan.fields, read.fields)
            st = self.stats.setdefault(read.model or "unknown", VersionStats())
            st.both_read += 1
            st.agreed += int(agree)
            if self.on_pair is not None:
                self.on_pair(read.model or "unknown", agree)
        self.record(
            {
                "symbology": scan.symbology,
                "raw": scan.raw[:200],
                "scan": scan.fields,
                "scan_errors": list(scan.errors),
                "carton_id": read.carton_id if read else None,
                "ocr_status": read.status if read else None,
                "ocr": read.fields if read else None,
                "ocr_model": read.model if read else None,
                "agree": agree,
            }
        )


def _agrees(scan: dict[str, str], ocr: dict[str, str]) -> bool:
    """Every field both sides read is equal, and they share at least one."""
    shared = [k for k in COMPARED if k in scan and k in ocr]
    return bool(shared) and all(scan[k] == ocr[k] for k in shared)


def _text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def ledger_recorder(ledger: Any) -> Callable[[dict[str, Any]], None]:
    """Record each scan as a signed ``scan-read`` observation in the ledger."""
    actor = f"device:{ledger.device_id}"

    def record(observation: dict[str, Any]) -> None:
        ledger.append("scan-read", observation, actor=actor)

    return record


class AgreementWorker(Worker):
    """Feeds a tracker (owned by the node, so its figures survive a restart) from the bus."""

    name = "agreement"

    def __init__(self, bus: Bus, tracker: AgreementTracker) -> None:
        super().__init__()
        self.bus = bus
        self.tracker = tracker
        self.sub: Subscription = bus.subscribe([SCAN_TOPIC, CARTON_TOPIC], maxsize=10_000)

    def step(self) -> None:
        message = self.sub.get(timeout=0.5)
        if message is not None:
            payload = message.payload
            if isinstance(payload, CartonEvent):
                self.tracker.on_read(payload)
            elif hasattr(payload, "symbology") and hasattr(payload, "data"):
                try:
                    text = payload.data.decode("utf-8")
                except UnicodeDecodeError:
                    text = ""
                self.tracker.on_scan(payload.symbology, text)
        self.tracker.expire()

    def teardown(self) -> None:
        self.bus.unsubscribe(self.sub)
