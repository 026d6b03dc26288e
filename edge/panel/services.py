"""What the panel needs from the rest of the node, as small Protocols, plus the carton event.

The panel never reaches into another area's internals: it is handed a :class:`PanelServices`
with whatever the runtime has wired. A missing part is ``None`` and the page says
"not configured" - the panel never invents a figure.

Carton events arrive on the runtime bus (``edge/runtime/bus.py``) under :data:`CARTON_TOPIC`
as :class:`CartonEvent` payloads, defined with the pipeline in ``edge/runtime/carton.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from edge.runtime.bus import Bus
from edge.runtime.carton import (  # the pipeline's contract, re-exported for the panel
    CARTON_TOPIC,
    STATUSES,
    CartonEvent,
    DefectBox,
    Status,
)

__all__ = ["CARTON_TOPIC", "STATUSES", "CartonEvent", "DefectBox", "Status"]


# ledger -------------------------------------------------------------------------------------
class StockRowLike(Protocol):
    @property
    def sku(self) -> str: ...
    @property
    def lot(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def zone(self) -> str: ...
    @property
    def qty(self) -> int: ...
    @property
    def expiry(self) -> str | None: ...
    @property
    def frozen(self) -> bool: ...


class BatchLike(Protocol):
    @property
    def sku(self) -> str: ...
    @property
    def lot(self) -> str: ...
    @property
    def expiry(self) -> str | None: ...
    @property
    def freeze_reason(self) -> str | None: ...
    @property
    def qty(self) -> int: ...


class EventLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def ts(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...


class OutboxLike(Protocol):
    @property
    def pending(self) -> int: ...
    @property
    def oldest_ts(self) -> str | None: ...


class PanelLedger(Protocol):
    """The part of ``edge.ledger.Ledger`` the panel uses."""

    def stock(
        self, *, sku: str | None = None, lot: str | None = None, location: str | None = None
    ) -> Sequence[StockRowLike]: ...
    def frozen_batches(self) -> Sequence[BatchLike]: ...
    def history(
        self, *, lot: str | None = None, sku: str | None = None, event_id: str | None = None
    ) -> Sequence[EventLike]: ...
    def release(self, sku: str, lot: str, *, reason: str, actor: str) -> object: ...
    def sku_by_gtin(self, gtin: str) -> str: ...
    def record_read(self, read: Mapping[str, Any], *, actor: str) -> object: ...
    def identify(
        self, hold: str, *, sku: str, lot: str, actor: str, expiry: str | None = None
    ) -> object: ...
    def outbox_stats(self) -> OutboxLike: ...


# review queue -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReviewItem:
    """A REVIEW or UNREADABLE carton waiting for a person."""

    id: str
    ts: str
    status: str
    confidence: float
    text: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)  # the reader's best guess
    reason: str = ""
    hold_id: str | None = None  # ledger hold of an unreadable carton, if the pipeline held it


class ReviewQueue(Protocol):
    """Samples kept by the OCR reader (``edge/vision/ocr/samples.py`` when it lands)."""

    def pending(self, limit: int = 100) -> list[ReviewItem]: ...
    def get(self, item_id: str) -> ReviewItem | None: ...
    def image(self, item_id: str) -> tuple[bytes, str] | None: ...
    def label(self, item_id: str, fields: Mapping[str, str], actor: str) -> None:
        """Mark the sample resolved with the confirmed code (a labeled sample for the cloud)."""
        ...

    def disk_usage(self) -> int: ...


class CodeValidator(Protocol):
    """Checks what a person typed; returns normalised fields or raises CODE_INVALID."""

    def validate(self, fields: Mapping[str, str]) -> dict[str, str]: ...


# equipment and device -----------------------------------------------------------------------
EquipmentKind = Literal["agv", "scanner", "plc", "mqtt", "sync"]
EQUIPMENT_KINDS: tuple[EquipmentKind, ...] = ("agv", "scanner", "plc", "mqtt", "sync")


@dataclass(frozen=True)
class EquipmentStatus:
    """One piece of equipment. ``state`` drives colour AND icon/text (colour-blind safe)."""

    kind: EquipmentKind
    name: str
    state: Literal["ok", "warn", "error", "off", "disabled"]
    battery: float | None = None  # percent, AGVs
    order: str | None = None  # current order id, AGVs
    pending: int | None = None  # events waiting, sync
    last_success: str | None = None  # UTC, sync
    error_code: str | None = None
    since: str | None = None  # UTC, when the link entered this state
    reported: tuple[str, ...] = ()  # errors the device itself reports (VDA 5050 errorType)


class StatusProvider(Protocol):
    kind: EquipmentKind

    def status(self) -> list[EquipmentStatus]: ...


@dataclass(frozen=True)
class DeviceFacts:
    device_id: str
    site: str
    cert_not_after: str | None  # None = no certificate (not enrolled)
    models: Mapping[str, str]  # name -> version; empty = manifest unavailable


class DeviceProvider(Protocol):
    def facts(self) -> DeviceFacts: ...


@dataclass
class PanelServices:
    """Everything the panel is handed; ``None`` means that part is not configured here."""

    bus: Bus
    device: DeviceProvider
    ledger: PanelLedger | None = None
    review: ReviewQueue | None = None
    codes: CodeValidator | None = None
    equipment: list[StatusProvider] = field(default_factory=list)
    expiry_warning_days: int = 30
    expiry_block_days: int = 7
