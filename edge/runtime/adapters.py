"""Adapters from the gate's small interfaces to the real line and fleet peers."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

from edge.contracts.errors import DockgateError
from edge.runtime.aio import LoopThread
from edge.runtime.bus import Bus

log = logging.getLogger(__name__)


class LineSorter:
    """Sends the gate's decisions through the PLC mailbox (firmware_bridge LineIO).

    Never blocks the booking stage: the handshake runs on the I/O loop, and its acknowledgement
    goes to the bus (``line.ack``). An unconfirmed command needs no retry here: the PLC sends a
    carton without a confirmed command to the reject lane by itself.
    """

    def __init__(self, io: LoopThread, line: Any, bus: Bus) -> None:
        self.io, self.line, self.bus = io, line, bus
        self.untracked = 0

    def sort(self, carton_id: str, tracking_id: int | None, chute: int) -> None:
        if tracking_id is None:
            # camera-triggered carton: the PLC has no id for it, so it cannot be steered; the
            # line's default (reject) applies and the ledger already holds the decision
            self.untracked += 1
            return
        future = self.io.submit(self.line.send_sort_command(tracking_id, chute))
        future.add_done_callback(lambda f: self._done(carton_id, f))

    def _done(self, carton_id: str, future: Future[Any]) -> None:
        try:
            ack = future.result()
        except Exception as exc:
            log.error("sort command for carton %s failed: %s", carton_id, exc)
            return
        self.bus.publish("line.ack", ack)
        if not ack.confirmed:
            log.warning("carton %s: %s %s", carton_id, ack.error, ack.message)


class AgvTasks:
    """Hands transport tasks to the VDA 5050 dispatcher (tasks persist in its SQLite)."""

    def __init__(self, dispatcher: Any) -> None:
        self.dispatcher = dispatcher
        self.refused = 0

    def submit_transport(self, task_id: str, carton_id: str, from_node: str, to: str) -> None:
        from edge.agv.fleet import DispatchTask

        try:
            self.dispatcher.submit(DispatchTask(task_id, carton_id, from_node, to))
        except DockgateError as exc:
            # e.g. a location the site map does not know: logged with its code, shown on the panel
            self.refused += 1
            log.error("AGV task for carton %s refused: %s", carton_id, exc)
