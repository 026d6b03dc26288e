"""Null objects for nodes without a PLC or a scanner: clearly logged, never silently "working".

A sort command on a node with no line I/O is never confirmed (there is no diverter to trust),
and the status says DISABLED so the panel shows the line as not fitted rather than healthy.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field

from edge.contracts.settings import StrictModel
from firmware_bridge.ports import (
    CommandAck,
    ConnectionStatus,
    LineSink,
    LinkState,
    ScanSink,
    StackLight,
)

log = logging.getLogger(__name__)


class NoopLineConfig(StrictModel):
    """No sorting-line PLC on this node."""

    type: Literal["noop"] = Field("noop", description="line adapter: noop (no PLC)")


class NoopLineIO:
    """:class:`firmware_bridge.ports.LineIO` that has no line behind it."""

    def __init__(self, config: NoopLineConfig | None = None, sink: LineSink | None = None) -> None:
        self._sink = sink
        self._status = ConnectionStatus(peer="plc", state=LinkState.DISABLED)
        self.commands = 0

    async def start(self) -> None:
        log.warning(
            "line_io.type = noop: no PLC; no photo-eye edges will arrive and no sorting "
            "command is ever confirmed"
        )
        if self._sink is not None:
            self._sink(self._status)

    async def stop(self) -> None:
        return None

    async def send_sort_command(self, tracking_id: int, destination: int) -> CommandAck:
        self.commands += 1
        log.info("noop line I/O: carton %d -> %d not sent (no PLC)", tracking_id, destination)
        return CommandAck(
            tracking_id, destination, 0, False, 0.0, None, "no PLC configured (line_io = noop)"
        )

    async def set_stack_light(self, light: StackLight) -> None:
        log.debug("noop line I/O: stack light %s not shown (no PLC)", light)

    def status(self) -> ConnectionStatus:
        return self._status


class NullScanSource:
    """:class:`firmware_bridge.ports.ScanSource` for ``scanner.type = none``."""

    def __init__(self, sink: ScanSink | None = None) -> None:
        self._sink = sink
        self._status = ConnectionStatus(peer="scanner", state=LinkState.DISABLED)

    def start(self) -> None:
        log.info("scanner.type = none: no serial scanner; OCR reads have no ground truth here")
        if self._sink is not None:
            self._sink(self._status)

    def stop(self) -> None:
        return None

    def trigger(self) -> bool:
        return False

    def status(self) -> ConnectionStatus:
        return self._status
