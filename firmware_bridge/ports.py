"""What the line adapters hand to the edge: raw facts, and the two interfaces that produce them.

Everything here is a frozen value that can cross a thread boundary (the runtime bus hands it on).
No GS1 interpretation happens in this package: a :class:`Scan` carries the AIM symbology
identifier and the data exactly as the scanner sent them; ``edge/codes`` interprets them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from edge.contracts.errors import ErrorCode


def utc_now() -> str:
    """Wall-clock UTC timestamp with milliseconds, as used in every fact (ISO 8601, ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LinkState(StrEnum):
    """Connection state of one peer, as the panel shows it."""

    CONNECTING = "CONNECTING"  # first attempt, or reconnecting after an outage
    CONNECTED = "CONNECTED"
    DEGRADED = "DEGRADED"  # answering, but something is wrong (e.g. stale PLC heartbeat)
    DISCONNECTED = "DISCONNECTED"  # last attempt failed; retrying with backoff
    DISABLED = "DISABLED"  # no device configured (no-op adapter)
    STOPPED = "STOPPED"


@dataclass(frozen=True)
class ConnectionStatus:
    """State of one peer with the last error, for the panel and the supervisor."""

    peer: str
    state: LinkState
    last_error: ErrorCode | None = None
    last_error_message: str = ""
    since: str = field(default_factory=utc_now)
    counters: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Scan:
    """One barcode read as the scanner sent it, framing removed.

    ``symbology`` is the AIM identifier (``"]C1"``, ``"]d2"``, ...) or ``None`` when the scanner
    sends none; ``data`` is the payload after it, GS (0x1D) separators kept.
    """

    source: str
    seq: int
    symbology: str | None
    data: bytes
    ts: str = field(default_factory=utc_now)
    monotonic: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        """The payload as text (UTF-8; the framer only passes frames that decode)."""
        return self.data.decode("utf-8")

    @property
    def with_identifier(self) -> str:
        """Identifier and data as one string, the form GS1 parsers such as biip accept."""
        return (self.symbology or "") + self.text


@dataclass(frozen=True)
class ScannerReply:
    """A scanner's answer to a host command (e.g. Zebra SSI ACK/NAK)."""

    source: str
    accepted: bool
    raw: bytes
    ts: str = field(default_factory=utc_now)


@dataclass(frozen=True)
class PhotoEyeEdge:
    """A photo-eye changed state. ``tracking_id`` is the PLC's id for the carton, when known."""

    name: str
    blocked: bool
    tracking_id: int | None = None
    ts: str = field(default_factory=utc_now)
    monotonic: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class CommandAck:
    """Outcome of one sorting command through the PLC mailbox.

    ``confirmed`` is True only when the PLC echoed ``sequence``; otherwise ``error`` says why and
    the PLC sends the carton to the reject lane on its own.
    """

    tracking_id: int
    destination: int
    sequence: int
    confirmed: bool
    latency_s: float
    error: ErrorCode | None = None
    message: str = ""
    ts: str = field(default_factory=utc_now)


@dataclass(frozen=True)
class StackLight:
    """Stack-light lamps in IEC 60204-1 colours (red fault, yellow abnormal, green normal,
    blue mandatory action) plus the buzzer."""

    red: bool = False
    yellow: bool = False
    green: bool = False
    blue: bool = False
    buzzer: bool = False

    @classmethod
    def for_condition(cls, condition: str) -> StackLight:
        """The IEC 60204-1 lamp for ``normal``, ``abnormal``, ``fault`` or ``action``."""
        table = {
            "normal": cls(green=True),
            "abnormal": cls(yellow=True),
            "fault": cls(red=True, buzzer=True),
            "action": cls(blue=True),
        }
        return table[condition]


LineEvent = PhotoEyeEdge | CommandAck | ConnectionStatus
ScanEvent = Scan | ScannerReply | ConnectionStatus
LineSink = Callable[[LineEvent], None]
ScanSink = Callable[[ScanEvent], None]


@runtime_checkable
class LineIO(Protocol):
    """The sorting line: photo-eyes in, sorting commands and outputs out (asyncio).

    Facts go to the sink given to the constructor; it is called on the event loop and must
    not block (hand off to the bus).
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send_sort_command(self, tracking_id: int, destination: int) -> CommandAck:
        """Mailbox handshake; never raises for PLC trouble, the ack says what happened."""
        ...

    async def set_stack_light(self, light: StackLight) -> None:
        """Verified write; raises ``DockgateError(PLC_WRITE_FAILED)`` when not confirmed."""
        ...

    def status(self) -> ConnectionStatus: ...


@runtime_checkable
class ScanSource(Protocol):
    """A barcode scanner (own reader thread). Facts go to the sink given to the constructor;
    it is called on the reader thread and must not block."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def trigger(self) -> bool:
        """Send the software trigger; False when no trigger is configured or the port is down."""
        ...

    def status(self) -> ConnectionStatus: ...
