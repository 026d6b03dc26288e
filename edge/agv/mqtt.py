"""paho-mqtt 2.x adapter: the only place of master control that imports paho.

It connects (TLS and credentials optional), keeps reconnecting with a doubling delay,
subscribes again after every connect (VDA 5050 QoS: 1 for ``connection``, 0 for the rest) and
hands every message and link change to the callbacks it was given.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.agv.config import AgvConfig
from edge.contracts.errors import ErrorCode

log = logging.getLogger(__name__)


class MqttLink:
    """A paho client with its own network thread (``loop_start``)."""

    def __init__(
        self,
        config: AgvConfig,
        on_message: Callable[[str, bytes], None],
        on_link: Callable[[bool], None],
        subscriptions: list[tuple[str, int]] | None = None,
    ) -> None:
        self._on_message_cb, self._on_link_cb = on_message, on_link
        manufacturer = config.manufacturer or "+"
        base = f"{config.interface_name}/v2/{manufacturer}/+"
        self.subscriptions = subscriptions or [
            (f"{base}/connection", 1),
            (f"{base}/state", 0),
            (f"{base}/factsheet", 0),
        ]
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=config.client_id, clean_session=True
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        if config.username:
            self.client.username_pw_set(config.username, config.read_password())
        if config.tls:
            ca = str(config.tls_ca_file) if config.tls_ca_file else None
            self.client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._stopping = False
        self._host, self._port, self._keepalive = (
            config.broker_host,
            config.broker_port,
            config.keepalive_s,
        )

    def start(self) -> None:
        """Connect in the background; an absent broker is retried, never fatal."""
        self.client.connect_async(self._host, self._port, keepalive=self._keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        # paho reports our own disconnect through on_disconnect too; it is not a lost link.
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("%s: broker refused: %s", ErrorCode.BROKER_UNREACHABLE.value, reason)
            return
        client.subscribe(self.subscriptions)
        self._on_link_cb(True)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self._stopping:
            log.info("disconnected from the broker (stopping)")
        else:
            log.warning("%s: link to broker lost (%s)", ErrorCode.BROKER_UNREACHABLE.value, reason)
        self._on_link_cb(False)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._on_message_cb(msg.topic, bytes(msg.payload))
        except Exception:  # a bug here must not kill paho's network thread
            log.exception("handling %s failed", msg.topic)
