"""Typed convenience methods, one per event kind, all thin wrappers around ``append``.

Quantities are in the SKU's base unit unless ``unit`` names a conversion (``CS`` = one case).
``event_id`` is the caller's idempotency key: sending the same id again returns the original
result and books nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import uuid_utils

from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.event import EventKind
from edge.ledger.codes import UNIDENTIFIED_SKU, clean
from edge.ledger.ledger import AppendResult


class _Appends(Protocol):
    def append(
        self,
        kind: str | EventKind,
        payload: dict[str, Any],
        *,
        actor: str,
        event_id: str | None = None,
        model_version: str | None = None,
    ) -> AppendResult: ...

    def choose_putaway_slot(self, sku: str, lot: str, expiry: str | None = None) -> str: ...

    def held_locations(self, hold: str) -> list[tuple[str, int]]: ...


def _p(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class Bookings:
    """Mixed into :class:`edge.ledger.Ledger`."""

    # stock movements -------------------------------------------------------------------
    def receive(
        self: _Appends,
        sku: str,
        lot: str,
        qty: int,
        *,
        actor: str,
        expiry: str | None = None,
        location: str = "INBOUND",
        unit: str | None = None,
        supplier: str | None = None,
        ref: str | None = None,
        event_id: str | None = None,
    ) -> AppendResult:
        """Book a receipt (inbound) into ``location`` (default the inbound dock); ``ref`` is
        the ASN or delivery note."""
        payload = _p(
            sku=sku,
            lot=lot,
            qty=qty,
            expiry=expiry,
            location=location,
            unit=unit,
            supplier=supplier,
            ref=ref,
        )
        return self.append(EventKind.RECEIPT, payload, actor=actor, event_id=event_id)

    def putaway(
        self: _Appends,
        sku: str,
        lot: str,
        qty: int,
        *,
        actor: str,
        from_location: str = "INBOUND",
        to: str | None = None,
        unit: str | None = None,
        event_id: str | None = None,
    ) -> AppendResult:
        """Move received stock into storage; ``to=None`` lets :meth:`choose_putaway_slot` pick."""
        to = to or self.choose_putaway_slot(sku, lot)
        payload = _p(sku=sku, lot=lot, qty=qty, unit=unit, to=to, **{"from": from_location})
        return self.append(EventKind.PUTAWAY, payload, actor=actor, event_id=event_id)

    def transfer(
        self: _Appends,
        sku: str,
        lot: str,
        qty: int,
        *,
        from_location: str,
        to: str,
        actor: str,
        unit: str | None = None,
        event_id: str | None = None,
    ) -> AppendResult:
        """Move stock between locations (a frozen batch may only move into quarantine)."""
        payload = _p(sku=sku, lot=lot, qty=qty, unit=unit, to=to, **{"from": from_location})
        return self.append(EventKind.TRANSFER, payload, actor=actor, event_id=event_id)

    def pick(
        self: _Appends,
        sku: str,
        lot: str,
        qty: int,
        *,
        from_location: str,
        actor: str,
        to: str = "OUTBOUND",
        unit: str | None = None,
        override_reason: str | None = None,
        supervisor: str | None = None,
        ref: str | None = None,
        event_id: str | None = None,
    ) -> AppendResult:
        """Pick for an outbound order ``ref`` (to the outbound staging location).

        Refused with ``FEFO_VIOLATION`` while an earlier-expiring available batch exists, unless
        ``override_reason`` and ``supervisor`` are given (both are recorded in the event).
        """
        payload = _p(
            sku=sku,
            lot=lot,
            qty=qty,
            unit=unit,
            to=to,
            override_reason=override_reason,
            supervisor=supervisor,
            ref=ref,
            **{"from": from_location},
        )
        return self.append(EventKind.PICK, payload, actor=actor, event_id=event_id)

    def ship(
        self: _Appends,
        sku: str,
        lot: str,
        qty: int,
        *,
        actor: str,
        from_location: str = "OUTBOUND",
        unit: str | None = None,
        ref: str | None = None,
        event_id: str | None = None,
    ) -> AppendResult:
        """Ship stock out of the warehouse (it leaves the ledger's stock); ``ref``: order."""
        payload = _p(sku=sku, lot=lot, qty=qty, unit=unit, ref=ref, **{"from": from_location})
        return self.append(EventKind.SHIP, payload, actor=actor, event_id=event_id)

    def return_to_supplier(
        self: _Appends,
        sku: str,
        lot: str,
        qty: int,
        *,
        from_location: str,
        supplier: str,
        reason: str,
        actor: str,
        unit: str | None = None,
        event_id: str | None = None,
    ) -> AppendResult:
        """Send stock back to a supplier (allowed for frozen batches: that is the usual case)."""
        payload = _p(
            sku=sku,
            lot=lot,
            qty=qty,
            unit=unit,
            supplier=supplier,
            reason=reason,
            **{"from": from_location},
        )
        return self.append(EventKind.RETURN_TO_SUPPLIER, payload, actor=actor, event_id=event_id)

    def adjust(
        self: _Appends,
        sku: str,
        lot: str,
        location: str,
        delta: int,
        *,
        reason: str,
        actor: str,
        event_id: str | None = None,
    ) -> AppendResult:
        """Correct a stock position by ``delta`` base units (damage, found stock...)."""
        payload = _p(sku=sku, lot=lot, location=location, delta=delta, reason=reason)
        return self.append(EventKind.ADJUSTMENT, payload, actor=actor, event_id=event_id)

    def cycle_count(
        self: _Appends,
        sku: str,
        lot: str,
        location: str,
        counted: int,
        *,
        actor: str,
        event_id: str | None = None,
    ) -> AppendResult:
        """Record a count; the position is set to ``counted`` and the difference recorded."""
        payload = _p(sku=sku, lot=lot, location=location, counted=counted)
        return self.append(EventKind.CYCLE_COUNT, payload, actor=actor, event_id=event_id)

    # batch status ----------------------------------------------------------------------
    def freeze(
        self: _Appends, sku: str, lot: str, *, reason: str, actor: str, event_id: str | None = None
    ) -> AppendResult:
        """QA freeze a batch (known here or not yet). A freeze fanned out from the cloud uses
        ``actor="cloud:<origin-device>"`` and an event id derived from the origin's event and this
        device (edge/sync uses uuid5), so a re-delivery is a no-op; the origin's own id cannot be
        reused, since event ids are unique across the fleet."""
        payload = _p(sku=sku, lot=lot, reason=reason)
        return self.append(EventKind.QA_FREEZE, payload, actor=actor, event_id=event_id)

    def release(
        self: _Appends, sku: str, lot: str, *, reason: str, actor: str, event_id: str | None = None
    ) -> AppendResult:
        """Lift a QA freeze."""
        payload = _p(sku=sku, lot=lot, reason=reason)
        return self.append(EventKind.QA_RELEASE, payload, actor=actor, event_id=event_id)

    def expiry_block(
        self: _Appends, sku: str, lot: str, *, reason: str, actor: str, event_id: str | None = None
    ) -> AppendResult:
        """Block a batch from sale for expiry reasons (permanent)."""
        payload = _p(sku=sku, lot=lot, reason=reason)
        return self.append(EventKind.EXPIRY_BLOCK, payload, actor=actor, event_id=event_id)

    # unreadable cartons ----------------------------------------------------------------
    def hold_unidentified(
        self: _Appends,
        qty: int = 1,
        *,
        actor: str,
        raw: str | None = None,
        reason: str = "code unreadable",
        location: str | None = None,
        hold_id: str | None = None,
        event_id: str | None = None,
        model_version: str | None = None,
    ) -> AppendResult:
        """Hold a carton whose code could not be read, in quarantine, under a hold id (its
        ``lot``; pseudo-SKU ``UNIDENTIFIED``) until an operator identifies it."""
        hold = hold_id or "H" + uuid_utils.uuid7().hex[-12:].upper()
        where = location or self.choose_putaway_slot(UNIDENTIFIED_SKU, hold)
        payload = _p(lot=hold, qty=qty, location=where, raw=raw, reason=reason)
        return self.append(
            EventKind.HOLD, payload, actor=actor, event_id=event_id, model_version=model_version
        )

    def identify(
        self: _Appends,
        hold: str,
        *,
        sku: str,
        lot: str,
        actor: str,
        expiry: str | None = None,
        qty: int | None = None,
        from_location: str | None = None,
        to: str | None = None,
        event_id: str | None = None,
    ) -> AppendResult:
        """Move a held carton into its real (sku, lot), by default all of it, in place."""
        if from_location is None or qty is None:
            places = self.held_locations(hold)
            if len(places) != 1:
                raise DockgateError(
                    ErrorCode.EVENT_INVALID,
                    f"hold {clean(hold)} is at {len(places)} locations: name from_location",
                )
            from_location = from_location or places[0][0]
            qty = qty if qty is not None else places[0][1]
        payload = _p(
            hold=hold, sku=sku, lot=lot, expiry=expiry, qty=qty, to=to, **{"from": from_location}
        )
        return self.append(EventKind.IDENTIFY, payload, actor=actor, event_id=event_id)

    # observations ----------------------------------------------------------------------
    def record_read(
        self: _Appends,
        read: Mapping[str, Any],
        *,
        actor: str,
        model_version: str | None = None,
        event_id: str | None = None,
    ) -> AppendResult:
        """Chain and sign a carton read (moves no stock)."""
        return self.append(
            EventKind.CARTON_READ,
            dict(read),
            actor=actor,
            event_id=event_id,
            model_version=model_version,
        )

    def record_verdict(
        self: _Appends,
        verdict: Mapping[str, Any],
        *,
        actor: str,
        model_version: str | None = None,
        event_id: str | None = None,
    ) -> AppendResult:
        """Chain and sign a defect verdict (moves no stock)."""
        return self.append(
            EventKind.DEFECT_VERDICT,
            dict(verdict),
            actor=actor,
            event_id=event_id,
            model_version=model_version,
        )

    # master data -----------------------------------------------------------------------
    def add_sku(
        self: _Appends,
        sku: str,
        *,
        actor: str,
        gtin: str | None = None,
        name: str = "",
        base_unit: str = "EA",
        safety_stock: int = 0,
        case_qty: int | None = None,
    ) -> AppendResult:
        """Create or update a SKU; ``case_qty`` also defines the unit ``CS`` (units per case)."""
        payload = _p(
            entity="sku",
            sku=sku,
            gtin=gtin,
            name=name,
            base_unit=base_unit,
            safety_stock=safety_stock,
        )
        result = self.append(EventKind.MASTER_DATA, payload, actor=actor)
        if case_qty is not None:
            unit = {"entity": "unit", "sku": sku, "unit": "CS", "factor": case_qty}
            self.append(EventKind.MASTER_DATA, unit, actor=actor)
        return result

    def add_unit(self: _Appends, sku: str, unit: str, factor: int, *, actor: str) -> AppendResult:
        """One ``unit`` of ``sku`` holds ``factor`` base units."""
        payload = {"entity": "unit", "sku": sku, "unit": unit, "factor": factor}
        return self.append(EventKind.MASTER_DATA, payload, actor=actor)

    def add_supplier(self: _Appends, code: str, *, actor: str, name: str = "") -> AppendResult:
        """Create or rename a supplier."""
        payload = {"entity": "supplier", "code": code, "name": name}
        return self.append(EventKind.MASTER_DATA, payload, actor=actor)

    def add_location(
        self: _Appends, code: str, zone: str, *, actor: str, rank: int = 100
    ) -> AppendResult:
        """Create or change a location; ``rank`` = distance from the outbound dock."""
        payload = {"entity": "location", "code": code, "zone": zone, "rank": rank}
        return self.append(EventKind.MASTER_DATA, payload, actor=actor)
