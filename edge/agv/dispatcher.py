"""VDA 5050 master control: turn carton tasks into orders and see them through.

Domain code: it never imports paho. It talks to the broker through a :class:`Link` (the paho
adapter lives in ``edge/agv/mqtt.py``) and is fed incoming messages with :meth:`on_message`,
link changes with :meth:`on_link` and the passing of time with :meth:`tick`. One lock
serialises everything, because paho's network thread and the ticker both call in.

Rules followed (VDA 5050 2.1, 6.6): a new orderId only to an idle AGV (an AGV still holding an
order we do not track gets ``cancelOrder`` first, and is used once it reports it); base then
horizon nodes, extended with orderUpdateId +1 only after the AGV's state echoed the previous
message; unacknowledged messages are resent with the same ids; a rejection stops resending.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from edge.agv import report
from edge.agv.config import AgvConfig
from edge.agv.fleet import (
    CONTROLLABLE,
    AgvView,
    Counters,
    DispatchTask,
    Link,
    action_final,
    action_status,
    rejection,
)
from edge.agv.messages import (
    Connection,
    Factsheet,
    State,
    split_topic,
)
from edge.agv.orders import build_route, last_base, order_body
from edge.agv.sender import Sender
from edge.agv.sitemap import SiteMap
from edge.agv.store import ACTIVE, TaskRow, TaskStore
from edge.agv.validation import MessageValidator
from edge.contracts.errors import DockgateError, ErrorCode

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        config: AgvConfig,
        sitemap: SiteMap,
        store: TaskStore,
        link: Link,
        validator: MessageValidator,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.sitemap, self.store, self.link = config, sitemap, store, link
        self.validator, self.clock = validator, clock
        self.lock = threading.RLock()
        self.agvs: dict[str, AgvView] = {}
        self.counters = Counters()
        self.link_up = False
        self.on_order_published: Callable[[str, float], None] | None = None  # for bench/tests
        self.sender = Sender(config.interface_name, link, store)
        self._sent_at: dict[str, float] = {}
        self._busy: dict[str, str] = {}  # agv key -> task id
        self._unsaved: set[str] = set()  # submitted, first write still to come
        for row in store.by_status(ACTIVE):
            if row.agv:
                self._busy[row.agv] = row.task_id
                # Known busy after a restart: give it state_timeout to report before blaming it.
                manufacturer, serial = row.agv.split("/", 1)
                self.agvs[row.agv] = AgvView(manufacturer, serial, last_seen=clock())
            if row.status == "ASSIGNED" and not row.acked:
                self._sent_at[row.task_id] = -1e18  # unknown fate: resend once the link is up

    # ----------------------------------------------------------------- public API
    def submit(self, task: DispatchTask) -> TaskRow:
        """Persist a task, then send it to the best AGV or leave it waiting in the queue."""
        to_node = self.sitemap.location_node(task.to_location)
        if task.from_node not in self.sitemap.nodes:
            raise DockgateError(
                ErrorCode.AGV_ROUTE_UNKNOWN, f"from_node {task.from_node!r} is not on the map"
            )
        self.sitemap.route(task.from_node, to_node)  # raises when no path joins them
        row = TaskRow(task.task_id, task.carton_id, task.from_node, task.to_location, to_node)
        with self.lock:
            existing = self.store.get(task.task_id)
            if existing is not None:  # the same carton read again: not a new task
                return existing
            self._unsaved.add(row.task_id)
            self._try_dispatch(row, self.clock())
            return row

    def cancel(self, task_id: str) -> TaskRow:
        """Operator cancel: a waiting task ends now; a running one gets ``cancelOrder``."""
        with self.lock:
            row = self.store.get(task_id)
            if row is None:
                raise DockgateError(ErrorCode.NOT_FOUND, f"no dispatch task {task_id}")
            if row.status == "QUEUED":
                row.status = "CANCELLED"
                self._save(row, "cancelled", detail="by operator while waiting")
            elif row.status in ("ASSIGNED", "RUNNING") and row.agv:
                row.cancel_action = self.sender.instant(row.agv, "cancelOrder")
                row.status = "CANCELLING"
                self._save(row, "cancelling", detail=f"cancelOrder {row.cancel_action}")
            return row

    def queue(self) -> list[dict[str, Any]]:
        """Tasks waiting for an AGV, oldest first, with why they wait (for the panel)."""
        with self.lock:
            return report.queue(self.store.by_status(("QUEUED",)))

    def status(self) -> dict[str, Any]:
        """Link, validator, task counts, each AGV and the counters (for the panel)."""
        with self.lock:
            return report.status(self.link_up, self.validator.source, self.store.counts(),
                                 self.agvs, self._busy, self.counters)  # fmt: skip

    # ----------------------------------------------------------------- inputs
    def on_link(self, up: bool) -> None:
        """The broker connection went up or down. While down nobody is blamed for silence."""
        with self.lock:
            self.link_up = up
            if up:
                now = self.clock()
                for view in self.agvs.values():
                    view.last_seen = now
                for task_id in self._sent_at:
                    self._sent_at[task_id] = -1e18  # resend unacknowledged orders at once

    def on_message(self, mqtt_topic: str, payload: bytes) -> None:
        """Validate, then act on one message from the broker (state, connection, factsheet)."""
        parts = split_topic(mqtt_topic)
        if parts is None or parts[0] != self.config.interface_name:
            return
        _, manufacturer, serial, subtopic = parts
        try:
            message = json.loads(payload)
        except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than ~1000
            self._invalid(mqtt_topic, f"not JSON: {exc}")
            return
        model, reason = self.validator.check(subtopic, message)
        if reason is None and (
            message.get("manufacturer") != manufacturer or message.get("serialNumber") != serial
        ):
            reason = "header manufacturer/serialNumber differ from the topic"
        if reason is not None:
            self._invalid(mqtt_topic, reason)
            return
        key = f"{manufacturer}/{serial}"
        with self.lock:
            view = self.agvs.setdefault(key, AgvView(manufacturer, serial))
            if isinstance(model, Connection):
                self._on_connection(key, view, model)
            elif isinstance(model, State):
                view.state, view.last_seen = model, self.clock()
                self._on_state(key, view, model)
            elif isinstance(model, Factsheet):
                view.factsheet = model

    def tick(self) -> None:
        """Time-based work: silent AGVs, unacknowledged orders, the waiting queue."""
        with self.lock:
            if not self.link_up:
                return
            now = self.clock()
            for key, task_id in list(self._busy.items()):
                view = self.agvs.get(key)
                row = self.store.get(task_id)
                if row is None:
                    continue
                if view is None or now - view.last_seen > self.config.state_timeout_s:
                    self._fail(row, f"no state from {key} for {self.config.state_timeout_s:g} s")
                elif row.status == "ASSIGNED" and not row.acked:
                    self._maybe_resend(row, now)
            for key, view in self.agvs.items():
                self._cancel_orphan(key, view, now)
                self._manage_charging(key, view, now)
            self._drain_queue(now)

    # ----------------------------------------------------------------- handlers
    def _on_connection(self, key: str, view: AgvView, msg: Connection) -> None:
        view.connection = msg.connection_state
        if msg.connection_state == "ONLINE":
            view.last_seen = self.clock()
            return
        task_id = self._busy.get(key)
        row = self.store.get(task_id) if task_id else None
        if row is not None:
            if row.status == "CANCELLING":
                self._finish(row, "CANCELLED", "cancelled", f"{key} went {msg.connection_state}")
            else:
                self._fail(row, f"{key} connection {msg.connection_state}")

    def _on_state(self, key: str, view: AgvView, st: State) -> None:
        if view.orphan_cancel and action_final(st, view.orphan_cancel):
            view.orphan_cancel = None
        task_id = self._busy.get(key)
        row = self.store.get(task_id) if task_id else None
        if row is None:
            if st.is_idle():
                self._drain_queue(self.clock())
            return
        if row.status == "CANCELLING":
            if row.cancel_action and action_final(st, row.cancel_action):
                self._finish(row, "CANCELLED", "cancelled", f"{key} reported cancelOrder")
            return
        fatal = st.fatal_errors()
        if fatal:
            self.sender.instant(
                key, "cancelOrder"
            )  # stop what is left; a person must clear the AGV
            self._fail(
                row, f"{key} fatal error {fatal[0].error_type}: {fatal[0].error_description}"
            )
            return
        if st.operating_mode not in CONTROLLABLE:  # spec 6.10.6: master control not in control
            self._fail(row, f"{key} switched to operatingMode {st.operating_mode}")
            return
        rejected = rejection(st, row.order_id or "")
        if rejected:
            self._fail(row, f"{key} rejected order {row.order_id}: {rejected}")
            return
        if st.order_id != row.order_id:
            if row.acked:
                # it had acknowledged this order and now holds another or none: it restarted
                # (its Last Will lost with a restarted broker) or someone else took it over
                self._fail(row, f"{key} no longer holds order {row.order_id} (restarted?)")
            return
        if not row.acked and st.order_update_id >= row.order_update_id:
            row.acked, row.status = True, "RUNNING"
            self._sent_at.pop(row.task_id, None)
            self._save(row, "acknowledged", detail=f"update {row.order_update_id}")
        if not row.acked:
            return
        if not row.picked and action_status(st, f"{row.order_id}-pick") == "FINISHED":
            row.picked = True
            self._save(row, "picked", detail=f"carton {row.carton_id} on {key}")
        last = len(row.route) - 1
        if row.released_upto < last:
            if st.new_base_request or st.last_node_sequence_id >= row.released_upto - 2:
                self._extend(row)
        elif st.is_idle() and st.last_node_sequence_id == last:
            failed = [
                a.action_id
                for a in st.action_states
                if a.action_id.startswith(f"{row.order_id}-") and a.action_status == "FAILED"
            ]
            if failed:
                self._fail(row, f"{key} failed actions {', '.join(failed)}")
            else:
                self._finish(row, "DONE", "done", f"{key} at {row.route[-1]}")

    # ----------------------------------------------------------------- order flow
    def _eligible(self, key: str, view: AgvView, now: float, row: TaskRow | None) -> bool:
        st = view.state
        return (
            view.connection == "ONLINE"
            and st is not None
            and now - view.last_seen <= self.config.state_timeout_s
            and key not in self._busy
            and (row is None or key not in row.failed_agvs)
            and view.orphan_cancel is None
            and st.is_idle()
            and not st.fatal_errors()  # WARNINGs clear themselves (spec 6.10.5)
            and st.operating_mode in CONTROLLABLE
            and st.safety_state.e_stop == "NONE"
            and not st.battery_state.charging
            and st.battery_state.battery_charge > self.config.battery_threshold
            and st.last_node_id in self.sitemap.nodes
        )

    def _try_dispatch(self, row: TaskRow, now: float) -> bool:
        distance = self.sitemap.distances_to(row.from_node)
        best: tuple[float, str] | None = None
        for key, view in self.agvs.items():
            if self._eligible(key, view, now, row) and view.state is not None:
                d = distance.get(view.state.last_node_id)
                if d is not None and (best is None or (d, key) < best):
                    best = (d, key)
        if best is None:
            if row.code != ErrorCode.AGV_UNAVAILABLE.value:
                row.code = ErrorCode.AGV_UNAVAILABLE.value
                row.reason = (
                    f"no AGV online, idle, error-free and above {self.config.battery_threshold:g}%"
                    " battery"
                )
                self._save(row, "waiting", row.code, row.reason)
            return False
        key = best[1]
        view = self.agvs[key]
        assert view.state is not None
        row.attempt += 1
        row.agv = key
        row.order_id = f"{row.task_id}.{row.attempt}"
        row.order_update_id = 0
        row.route = build_route(self.sitemap, view.state.last_node_id, row.from_node, row.to_node)
        row.released_upto = last_base(len(row.route), 0, self._base_nodes(key))
        row.acked, row.sends, row.status, row.code, row.reason = False, 0, "ASSIGNED", None, None
        self._busy[key] = row.task_id
        self._send_order(row, start=0, event=f"order to {key}")
        return True

    def _drain_queue(self, now: float) -> None:
        """Oldest first; stops as soon as no AGV at all could take a task (cheap when idle)."""
        for row in self.store.by_status(("QUEUED",)):
            if not any(self._eligible(k, v, now, None) for k, v in self.agvs.items()):
                break
            self._try_dispatch(row, now)

    def _extend(self, row: TaskRow) -> None:
        start = row.released_upto
        row.released_upto = last_base(len(row.route), start, self._base_nodes(row.agv))
        row.order_update_id += 1
        row.acked, row.sends, row.status = False, 0, "ASSIGNED"
        self._send_order(row, start=start, event=f"extend to seq {row.released_upto}")

    def _maybe_resend(self, row: TaskRow, now: float) -> None:
        if now - self._sent_at.get(row.task_id, now) < self.config.order_ack_timeout_s:
            return
        if row.sends > self.config.max_order_resends:
            self._fail(row, f"{row.agv} never acknowledged order {row.order_id}")
            return
        self.counters.resends += 1
        start = 0 if row.order_update_id == 0 else self._update_start(row)
        self._send_order(row, start=start, event="resend")

    def _update_start(self, row: TaskRow) -> int:
        # Replay the same update: it started at the decision point before the last extension.
        start = 0
        for _ in range(row.order_update_id):
            start = last_base(len(row.route), start, self._base_nodes(row.agv))
        return start if start < row.released_upto else max(0, row.released_upto - 2)

    def _max_nodes(self, key: str | None) -> int | None:
        """``order.nodes`` from the AGV's factsheet (spec 6.15), if it declared one."""
        sheet = self.agvs[key].factsheet if key in self.agvs else None
        limit = sheet.protocol_limits.get("maxArrayLens", {}).get("order.nodes") if sheet else None
        return int(limit) if isinstance(limit, int) and limit >= 2 else None

    def _base_nodes(self, key: str | None) -> int:
        return min(self.config.base_nodes, self._max_nodes(key) or self.config.base_nodes)

    def _send_order(self, row: TaskRow, start: int, event: str) -> None:
        assert row.agv and row.order_id
        body = order_body(
            self.sitemap, row.route, start, row.released_upto, row.order_id,
            row.order_update_id, row.carton_id, row.from_node, self._max_nodes(row.agv),
        )  # fmt: skip
        row.sends += 1
        hid = self.sender.next_header(row.agv, "order")
        self._save(row, event, detail=f"{row.order_id}/{row.order_update_id}",
                        header=(row.agv, "order", hid))  # fmt: skip
        self._sent_at[row.task_id] = self.clock()
        self.sender.publish(row.agv, "order", hid, body)
        self.counters.orders_sent += 1
        if self.on_order_published is not None:
            self.on_order_published(row.task_id, time.perf_counter())

    def _fail(self, row: TaskRow, reason: str) -> None:
        """An assignment failed: re-dispatch to another AGV once, then give up (operator)."""
        log.warning("%s: task %s: %s", ErrorCode.AGV_ORDER_FAILED.value, row.task_id, reason)
        if row.agv:
            self._busy.pop(row.agv, None)
            row.failed_agvs.append(row.agv)
        self._sent_at.pop(row.task_id, None)
        if row.picked:
            # The carton rides on the failed AGV: another AGV cannot fetch it from the dock.
            reason += f"; carton {row.carton_id} is on {row.agv}, recover it by hand"
        row.agv, row.acked, row.code, row.reason = (
            None,
            False,
            ErrorCode.AGV_ORDER_FAILED.value,
            reason,
        )
        if row.redispatched == 0 and not row.picked:
            row.redispatched, row.status = 1, "QUEUED"
            self.counters.redispatches += 1
            self._save(row, "redispatch", row.code, reason)
            self._try_dispatch(row, self.clock())
        else:
            row.status = "FAILED"
            self._save(row, "failed", row.code, reason)

    def _finish(self, row: TaskRow, status: str, event: str, detail: str) -> None:
        if row.agv:
            self._busy.pop(row.agv, None)
        self._sent_at.pop(row.task_id, None)
        row.status = status
        self._save(row, event, detail=detail)
        self._drain_queue(self.clock())

    def _cancel_orphan(self, key: str, view: AgvView, now: float) -> None:
        """An online AGV holding an order we do not track gets cancelOrder before any new one."""
        st = view.state
        if key in self._busy or st is None or view.connection != "ONLINE" or st.is_idle():
            return
        if view.orphan_cancel and now - view.orphan_sent < self.config.order_ack_timeout_s:
            return
        view.orphan_cancel, view.orphan_sent = self.sender.instant(key, "cancelOrder"), now

    def _manage_charging(self, key: str, view: AgvView, now: float) -> None:
        """An idle AGV at or below the threshold charges (in place, in this version) until
        ``charge_until``; without this a fleet running for months would drain and stop."""
        st = view.state
        if st is None or key in self._busy or view.connection != "ONLINE" or not st.is_idle():
            return
        battery, want = st.battery_state, None
        if not battery.charging and battery.battery_charge <= self.config.battery_threshold:
            want = "startCharging"
        elif battery.charging and battery.battery_charge >= self.config.charge_until:
            want = "stopCharging"
        if want and now - view.charge_sent >= self.config.order_ack_timeout_s:
            view.charge_sent = now
            self.sender.instant(key, want)

    # ----------------------------------------------------------------- output
    def _save(
        self,
        row: TaskRow,
        event: str,
        code: str | None = None,
        detail: str | None = None,
        header: tuple[str, str, int] | None = None,
    ) -> None:
        insert = row.task_id in self._unsaved
        self.store.save(row, event, code, detail, header=header, insert=insert)
        self._unsaved.discard(row.task_id)

    def _invalid(self, mqtt_topic: str, reason: str) -> None:
        self.counters.invalid_messages += 1
        self.counters.last_invalid.append(f"{mqtt_topic}: {reason}")
        log.warning("%s: %s ignored: %s", ErrorCode.AGV_MESSAGE_INVALID.value, mqtt_topic, reason)
