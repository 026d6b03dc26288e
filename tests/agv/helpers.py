"""AGV test helpers: the simulator as a real child process, a wire observer, waiting."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.agv.service import DispatchService

REPO = Path(__file__).resolve().parents[2]
SITEMAP = REPO / "fixtures" / "agv" / "sitemap.toml"


def wait_for(cond: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Seen:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class Observer:
    """Subscribes to everything and records it, as a test-side witness of the wire."""

    port: int
    messages: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"obs-{id(self)}")
        self.client.on_message = self._on
        self.client.on_connect = lambda c, *_: c.subscribe([("#", 1)])
        self.client.reconnect_delay_set(1, 2)

    def _on(self, client: Any, ud: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(
                Seen(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), time.monotonic())
            )

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def of(self, suffix: str) -> list[Seen]:
        with self.lock:
            return [m for m in self.messages if m.topic.endswith("/" + suffix)]

    def publish(self, topic: str, payload: Any, qos: int = 0, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, data, qos=qos, retain=retain).wait_for_publish(5)


class Sims:
    """``dockgate sim agv`` child processes, killed or stopped at teardown."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 2, prefix: str = "agv-", **opts: Any) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-c", "from edge.cli import main; main()", "sim", "agv",
                "--count", str(count), "--port", str(self.port), "--serial-prefix", prefix,
                "--sitemap", str(SITEMAP)]  # fmt: skip
        defaults = {"speed": 20.0, "action_seconds": 0.1, "state_interval": 0.5}
        for key, value in {**defaults, **opts}.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def online(svc: DispatchService, n: int) -> Callable[[], bool]:
    """True once ``n`` AGVs are online and have sent a state."""

    def check() -> bool:
        agvs = svc.dispatcher.status()["agvs"]
        return sum(1 for a in agvs.values() if a["connection"] == "ONLINE" and a["last_node"]) >= n

    return check
