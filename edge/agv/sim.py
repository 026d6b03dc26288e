"""``dockgate sim agv``: N simulated AGVs speaking VDA 5050 2.1 over MQTT, in one process.

Each AGV has its own MQTT connection with a last will (``connection`` CONNECTIONBROKEN, QoS 1,
retained), publishes ONLINE (retained) on every connect and OFFLINE on a graceful stop, a
retained factsheet, and its state every ``--state-interval`` seconds and on every change. It
drives along released nodes at ``--speed`` m/s, runs pick/drop actions, drains and charges its
battery and obeys ``cancelOrder``.

Fault injection, for tests and demos: publish JSON to ``dockgate-sim/<manufacturer>/<serial>/
control`` (not a VDA 5050 topic), one of::

    {"cmd": "error", "errorType": "laserBlocked", "errorLevel": "FATAL"}   add an error
    {"cmd": "clearErrors"}                                                  remove all errors
    {"cmd": "battery", "charge": 12.5}                                      set the charge (%)
    {"cmd": "mode", "operatingMode": "MANUAL"}                              set operatingMode
    {"cmd": "silence", "seconds": 30}                                       stop sending state
    {"cmd": "disconnect", "seconds": 10}   drop the socket (the broker sends the will), reconnect
    {"cmd": "offline"}                      graceful OFFLINE and disconnect, stays away
    {"cmd": "garbage"}                      publish one state that breaks the schema
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.agv.messages import header, topic
from edge.agv.sim_vehicle import Vehicle
from edge.agv.sitemap import load_sitemap
from edge.agv.validation import MessageValidator

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
DEFAULT_SITEMAP = REPO / "fixtures" / "agv" / "sitemap.toml"


def factsheet(v: Vehicle) -> dict[str, Any]:
    blocking = ["NONE", "SOFT", "HARD"]
    return {
        **header(0, v.manufacturer, v.serial),
        "typeSpecification": {
            "seriesName": "dockgate-sim", "agvKinematic": "DIFF", "agvClass": "CARRIER",
            "maxLoadMass": 50, "localizationTypes": ["NATURAL"],
            "navigationTypes": ["VIRTUAL_LINE_GUIDED"],
        },
        "physicalParameters": {
            "speedMin": 0.0, "speedMax": v.speed, "accelerationMax": 1.0,
            "decelerationMax": 1.0, "heightMax": 0.4, "width": 0.6, "length": 0.9,
        },
        "protocolLimits": {
            "maxStringLens": {"msgLen": 100000, "topicSerialLen": 64, "idLen": 128},
            "maxArrayLens": {"order.nodes": 500, "order.edges": 499},
            "timing": {"minOrderInterval": 0.0, "minStateInterval": 0.05},
        },
        "protocolFeatures": {
            "optionalParameters": [],
            "agvActions": [
                {"actionType": t, "actionScopes": s, "blockingTypes": blocking}
                for t, s in (("pick", ["NODE"]), ("drop", ["NODE"]),
                             ("cancelOrder", ["INSTANT"]), ("startPause", ["INSTANT"]),
                             ("stopPause", ["INSTANT"]), ("startCharging", ["INSTANT"]),
                             ("stopCharging", ["INSTANT"]), ("stateRequest", ["INSTANT"]),
                             ("factsheetRequest", ["INSTANT"]), ("initPosition", ["INSTANT"]))
            ],
        },
        "agvGeometry": {},
        "loadSpecification": {},
    }  # fmt: skip


class SimAgv:
    """One simulated AGV on its own MQTT connection."""

    def __init__(
        self, vehicle: Vehicle, host: str, port: int, interface: str, validator: MessageValidator
    ) -> None:
        self.v, self.interface, self.validator = vehicle, interface, validator
        self.lock = threading.Lock()
        self.headers: dict[str, int] = {}
        self.silent_until = 0.0
        self.reconnect_at: float | None = None
        self.away = False
        self.force_state = True
        self.next_state = 0.0
        self.control: list[dict[str, Any]] = []
        serial, manufacturer = vehicle.serial, vehicle.manufacturer
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sim-{manufacturer}-{serial}"
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        will = {**header(0, manufacturer, serial), "connectionState": "CONNECTIONBROKEN"}
        self.client.will_set(self.t("connection"), json.dumps(will), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.host, self.port = host, port
        self.control_topic = f"dockgate-sim/{manufacturer}/{serial}/control"

    def t(self, subtopic: str) -> str:
        return topic(self.interface, self.v.manufacturer, self.v.serial, subtopic)

    def hid(self, subtopic: str) -> int:
        self.headers[subtopic] = self.headers.get(subtopic, -1) + 1
        return self.headers[subtopic]

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=5)
        self.client.loop_start()

    def publish(
        self, subtopic: str, message: dict[str, Any], qos: int = 0, retain: bool = False
    ) -> Any:
        return self.client.publish(self.t(subtopic), json.dumps(message), qos=qos, retain=retain)

    def connection(self, state: str) -> Any:
        msg = {**header(self.hid("connection"), self.v.manufacturer, self.v.serial),
               "connectionState": state}  # fmt: skip
        return self.publish("connection", msg, qos=1, retain=True)

    def _on_connect(
        self, client: mqtt.Client, ud: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            return
        client.subscribe([(self.t("order"), 0), (self.t("instantActions"), 0),
                          (self.control_topic, 1)])  # fmt: skip
        self.connection("ONLINE")
        with self.lock:
            sheet = {**factsheet(self.v), "headerId": self.hid("factsheet")}
            self.force_state = True
        self.publish("factsheet", sheet, retain=True)

    def _on_message(self, client: mqtt.Client, ud: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = None
        if msg.topic == self.control_topic:
            with self.lock:
                self.control.append(body if isinstance(body, dict) else {})
            return
        subtopic = msg.topic.rsplit("/", 1)[-1]
        reason = self.validator.reason(subtopic, body)
        send_sheet = False
        with self.lock:
            if reason is not None:
                self.v.errors.append({"errorType": "validationError", "errorLevel": "WARNING",
                                      "errorDescription": reason[:200]})  # fmt: skip
                self.v.changed = True
            elif subtopic == "order":
                self.v.accept_order(body)
            elif subtopic == "instantActions":
                for action in body["actions"]:
                    send_sheet |= self.v.instant(action)
        if send_sheet:
            self.publish("factsheet", {**factsheet(self.v), "headerId": self.hid("factsheet")},
                         retain=True)  # fmt: skip

    def step(self, dt: float, now: float, state_interval: float) -> None:
        with self.lock:
            for cmd in self.control:
                self._control(cmd, now)
            self.control.clear()
            self.v.step(dt)
            if self.reconnect_at is not None and now >= self.reconnect_at:
                self.reconnect_at = None
                self.client.reconnect()
                self.client.loop_start()
            due = self.force_state or self.v.changed or now >= self.next_state
            if not due or now < self.silent_until or self.away or self.reconnect_at is not None:
                return
            self.v.changed = self.force_state = False
            self.next_state = now + state_interval
            state = self.v.state(self.hid("state"))
        self.publish("state", state)

    def _control(self, cmd: dict[str, Any], now: float) -> None:
        what = cmd.get("cmd")
        v = self.v
        if what == "error":
            v.errors.append({"errorType": str(cmd.get("errorType", "simulatedError")),
                             "errorLevel": str(cmd.get("errorLevel", "FATAL"))})  # fmt: skip
        elif what == "clearErrors":
            v.errors = []
        elif what == "battery":
            v.battery = float(cmd.get("charge", v.battery))
        elif what == "mode":
            v.operating_mode = str(cmd.get("operatingMode", "AUTOMATIC"))
        elif what == "silence":
            self.silent_until = now + float(cmd.get("seconds", 30))
        elif what == "disconnect":
            # Drop the TCP connection without DISCONNECT: the broker publishes our will.
            sock = self.client.socket()
            self.client.loop_stop()
            if sock is not None:
                sock.close()
            self.reconnect_at = now + float(cmd.get("seconds", 10))
        elif what == "offline":
            self.connection("OFFLINE").wait_for_publish(2)
            self.client.disconnect()
            self.away = True
        elif what == "garbage":
            bad = {**header(self.hid("state"), v.manufacturer, v.serial), "orderId": 42}
            self.publish("state", bad)
        v.changed = True

    def stop(self) -> None:
        if not self.away and self.reconnect_at is None and self.client.is_connected():
            self.connection("OFFLINE").wait_for_publish(2)
            self.client.disconnect()
        self.client.loop_stop()


@dataclass(frozen=True)
class SimOptions:
    count: int = 3
    host: str = "127.0.0.1"
    port: int = 1883
    interface: str = "uagv"
    manufacturer: str = "dockgate-sim"
    prefix: str = "agv-"
    sitemap: Path = DEFAULT_SITEMAP
    speed: float = 1.0  # m/s
    action_s: float = 1.0  # seconds per pick or drop
    state_interval: float = 1.0  # seconds between periodic states
    battery: float = 100.0  # % at start
    charge_rate: float = 1.0  # % per second while charging
    hz: float = 20.0  # simulation steps per second


def run(opts: SimOptions, stop: threading.Event) -> None:
    """Run ``opts.count`` AGVs until ``stop`` is set."""
    sitemap = load_sitemap(opts.sitemap)
    starts = sitemap.spec.parking or list(sitemap.nodes)
    schemas = Path(os.environ.get("DOCKGATE_VDA5050_SCHEMAS") or REPO.parent / "shared" / "vda5050")
    validator = MessageValidator(schemas if (schemas / "order.schema").exists() else None)
    agvs = []
    for i in range(opts.count):
        node = sitemap.nodes[starts[i % len(starts)]]
        vehicle = Vehicle(opts.manufacturer, f"{opts.prefix}{i + 1:02d}", sitemap.map_id, node.id,
                          node.x, node.y, node.theta, speed=opts.speed, action_s=opts.action_s,
                          battery=opts.battery, charge_per_s=opts.charge_rate)  # fmt: skip
        agvs.append(SimAgv(vehicle, opts.host, opts.port, opts.interface, validator))
    for agv in agvs:
        agv.start()
    dt = 1.0 / opts.hz
    last = time.monotonic()
    try:
        while not stop.wait(dt):
            now = time.monotonic()
            for agv in agvs:
                agv.step(now - last, now, opts.state_interval)
            last = now
    finally:
        for agv in agvs:
            agv.stop()


@click.command("agv")
@click.option("--count", default=3, show_default=True, type=click.IntRange(1, 200), help="AGVs")
@click.option("--host", default="127.0.0.1", show_default=True, help="MQTT broker host")
@click.option("--port", default=1883, show_default=True, type=click.IntRange(1, 65535))
@click.option("--interface", default="uagv", show_default=True, help="VDA 5050 interfaceName")
@click.option("--manufacturer", default="dockgate-sim", show_default=True)
@click.option("--serial-prefix", default="agv-", show_default=True, help="serial = prefix + NN")
@click.option(
    "--sitemap",
    "sitemap_path",
    type=click.Path(exists=True, path_type=Path),
    default=DEFAULT_SITEMAP,
    show_default=True,
    help="AGVs start on its parking nodes",
)
@click.option(
    "--speed", default=1.0, show_default=True, type=click.FloatRange(0.01, 100), help="m/s"
)
@click.option(
    "--action-seconds",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 600),
    help="duration of a pick or drop",
)
@click.option(
    "--state-interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.05, 30),
    help="seconds between periodic states",
)
@click.option("--battery", default=100.0, show_default=True, type=click.FloatRange(0, 100),
              help="battery charge at start (%)")  # fmt: skip
@click.option("--charge-rate", default=1.0, show_default=True, type=click.FloatRange(0, 100),
              help="% per second while charging")  # fmt: skip
def agv(count: int, host: str, port: int, interface: str, manufacturer: str, serial_prefix: str,
        sitemap_path: Path, speed: float, action_seconds: float, state_interval: float,
        battery: float, charge_rate: float) -> None:  # fmt: skip
    """Simulate COUNT AGVs speaking VDA 5050 2.1 over MQTT until Ctrl-C.

    Each AGV has its own MQTT connection with a last will, reports state at a regular rate and
    on change, drives released nodes, runs pick/drop, drains and charges its battery.

    Inject faults by publishing JSON to dockgate-sim/<manufacturer>/<serial>/control:

    \b
      {"cmd": "error", "errorType": "laserBlocked", "errorLevel": "FATAL"}
      {"cmd": "clearErrors"}
      {"cmd": "battery", "charge": 12.5}
      {"cmd": "mode", "operatingMode": "MANUAL"}
      {"cmd": "silence", "seconds": 30}      (no state for that long)
      {"cmd": "disconnect", "seconds": 10}   (socket dropped: the broker sends the will)
      {"cmd": "offline"}                     (graceful OFFLINE)
      {"cmd": "garbage"}                     (one state that breaks the schema)
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"simulating {count} AGVs on {host}:{port} ({interface}/v2/{manufacturer}/...)")
    opts = SimOptions(count, host, port, interface, manufacturer, serial_prefix, sitemap_path,
                      speed, action_seconds, state_interval, battery, charge_rate)  # fmt: skip
    run(opts, stop)
