"""Equipment status providers over the parts that report it, mapped to what the panel shows.

Each adapter reads a status the owning area already exposes, duck-typed so the panel imports
neither paho nor pymodbus nor pyserial:

- :class:`LinkStatusProvider`: scanners and the PLC (``firmware_bridge`` ``status()`` returning
  a ``ConnectionStatus``: peer, state, last_error).
- :class:`AgvStatusProvider` and :class:`MqttStatusProvider`: the AGV dispatcher's ``status()``.
- :class:`SyncStatusProvider`: the sync agent's state file and the ledger's outbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from edge.panel.services import EquipmentKind, EquipmentStatus, PanelLedger

State = Literal["ok", "warn", "error", "off", "disabled"]
LINK_STATES: dict[str, State] = {
    "CONNECTED": "ok",
    "DEGRADED": "warn",
    "CONNECTING": "warn",
    "DISCONNECTED": "error",
    "DISABLED": "disabled",
    "STOPPED": "off",
}


class HasLinkStatus(Protocol):
    def status(self) -> Any: ...


class LinkStatusProvider:
    """Scanners or PLCs: one row per adapter, with its last error code."""

    def __init__(self, kind: EquipmentKind, sources: list[HasLinkStatus]) -> None:
        self.kind = kind
        self.sources = sources

    def status(self) -> list[EquipmentStatus]:
        rows = []
        for source in self.sources:
            st = source.status()
            state = LINK_STATES.get(str(getattr(st.state, "value", st.state)), "error")
            code = st.last_error
            rows.append(
                EquipmentStatus(
                    self.kind,
                    str(st.peer),
                    state,
                    error_code=str(getattr(code, "value", code)) if code else None,
                    since=str(st.since) if getattr(st, "since", None) else None,
                )
            )
        return rows


class HasDispatchStatus(Protocol):
    def status(self) -> dict[str, Any]: ...


class AgvStatusProvider:
    """One row per AGV the dispatcher knows: connection, battery, the task it is busy with."""

    kind: EquipmentKind = "agv"

    def __init__(self, dispatcher: HasDispatchStatus) -> None:
        self.dispatcher = dispatcher

    def status(self) -> list[EquipmentStatus]:
        rows = []
        for name, agv in self.dispatcher.status().get("agvs", {}).items():
            online = agv.get("connection") == "ONLINE"
            battery = agv.get("battery")
            reported = tuple(str(e) for e in agv.get("errors") or ())
            state: State = "ok" if online else "error"
            if online and (reported or (battery is not None and battery < 20)):
                state = "warn"
            rows.append(
                EquipmentStatus(
                    "agv",
                    str(name),
                    state,
                    battery=float(battery) if battery is not None else None,
                    order=agv.get("busy_with"),
                    error_code=None if online else "AGV_UNAVAILABLE",
                    reported=reported,
                )
            )
        return rows


class MqttStatusProvider:
    kind: EquipmentKind = "mqtt"

    def __init__(self, dispatcher: HasDispatchStatus, broker: str = "broker") -> None:
        self.dispatcher, self.broker = dispatcher, broker

    def status(self) -> list[EquipmentStatus]:
        up = bool(self.dispatcher.status().get("link_up"))
        code = None if up else "BROKER_UNREACHABLE"
        return [EquipmentStatus("mqtt", self.broker, "ok" if up else "error", error_code=code)]


class SyncStatusProvider:
    """Events waiting in the ledger's outbox, and the sync agent's last success and error
    (its JSON state file, written by ``dockgate edge sync``); a missing file means the agent
    has not run here yet, and the last success is shown as unknown."""

    kind: EquipmentKind = "sync"

    def __init__(self, ledger: PanelLedger, state_file: Path | None = None) -> None:
        self.ledger = ledger
        self.state_file = state_file
        self._read: Callable[[], dict[str, Any]] = self._load

    def _load(self) -> dict[str, Any]:
        if self.state_file is None:
            return {}
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def status(self) -> list[EquipmentStatus]:
        pending = self.ledger.outbox_stats().pending
        st = self._read()
        failing = int(st.get("consecutive_failures") or 0) > 0
        state: State = "error" if failing else ("ok" if pending == 0 else "warn")
        return [
            EquipmentStatus(
                "sync",
                "cloud",
                state,
                pending=pending,
                last_success=st.get("last_success"),
                error_code=st.get("last_error_code") if failing else None,
            )
        ]
