"""Master control's outgoing VDA 5050 messages: topic, flat header, persisted headerIds.

headerId runs per AGV and per topic (spec 6.2) and is stored in the dispatch database, so a
restarted master control continues the sequence instead of starting again at 0.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from edge.agv.fleet import Link
from edge.agv.messages import UINT32, header, topic
from edge.agv.orders import instant_body
from edge.agv.store import TaskStore

log = logging.getLogger(__name__)


class Sender:
    def __init__(self, interface_name: str, link: Link, store: TaskStore) -> None:
        self.interface_name, self.link, self.store = interface_name, link, store
        self._headers = store.header_ids()

    @property
    def headers(self) -> dict[tuple[str, str], int]:
        """Last headerId used per (``manufacturer/serial``, subtopic)."""
        return dict(self._headers)

    def next_header(self, key: str, subtopic: str) -> int:
        """Reserve the next headerId; the caller persists it with its own write."""
        value = (self._headers.get((key, subtopic), -1) + 1) % (UINT32 + 1)
        self._headers[(key, subtopic)] = value
        return value

    def publish(self, key: str, subtopic: str, hid: int, body: dict[str, Any]) -> bool:
        """Send one message (QoS 0, not retained, as the spec says for order/instantActions)."""
        manufacturer, serial = key.split("/", 1)
        message = {**header(hid, manufacturer, serial), **body}
        t = topic(self.interface_name, manufacturer, serial, subtopic)
        sent = self.link.publish(t, json.dumps(message).encode(), 0, False)
        if not sent:
            log.info("%s not sent (link down); order messages are resent when it returns", t)
        return sent

    def instant(self, key: str, action_type: str) -> str:
        """Send one instant action (e.g. ``cancelOrder``); returns its actionId."""
        action_id, body = instant_body(action_type)
        hid = self.next_header(key, "instantActions")
        self.store.save_header(key, "instantActions", hid)
        self.publish(key, "instantActions", hid, body)
        return action_id
