"""`dockgate demo`: headless runs to completion with every check passing (CI runs it), and
Ctrl-C on the live demo leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

DEMO = [sys.executable, "-m", "edge.cli_main", "demo"]


@pytest.mark.slow
def test_headless_demo_scores_every_carton(tmp_path: Path) -> None:
    result = subprocess.run(
        [*DEMO, "--headless", "--cartons", "20", "--workdir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-3000:]
    summary = out.split("Dockgate demo: 20 cartons")[-1]
    assert "FAILED" not in summary
    for line in (
        "cartons seen (presence trigger)",
        "reads ACCEPTED correct",
        "AGV orders completed",
        "envelopes verified against the fleet CA",
        "ledger verify",
    ):
        assert line in summary
    assert "20/20 (missed 0, split 0)" in summary


def test_ctrl_c_leaves_nothing_running(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*DEMO, "--cartons", "3", "--workdir", str(tmp_path / "d")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # our own group: the SIGINT below reaches only the demo's
    )
    assert proc.stdout is not None
    seen: list[str] = []
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 240
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("panel: http://127.0.0.1:"):
                break
            assert time.monotonic() < deadline, "".join(seen)
        else:
            raise AssertionError("demo ended before it was ready:\n" + "".join(seen))
        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        for peer in ("cloud serve", "mosquitto", "sim agv", "sim plc", "sim scanner"):
            assert peer in names, names
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, rest[-3000:]
        assert "nothing left running" in rest
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for child in children:
            if child.is_running():
                child.kill()


# the demo's MQTT broker: Mosquitto when installed, else the embedded amqtt broker ---------------


def _roundtrip(port: int) -> list[tuple[str, bytes, bool]]:
    """Publish a retained message (as VDA 5050 'connection' topics are) and read it back from a
    second client that subscribes afterwards; a last will must be delivered too."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got: list[tuple[str, bytes, bool]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sub")
    sub.on_message = lambda _c, _u, m: got.append((m.topic, bytes(m.payload), bool(m.retain)))
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub")
    pub.will_set("uagv/v2/x/1/connection", b"CONNECTIONBROKEN", qos=1)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    try:
        pub.publish("uagv/v2/x/1/state", b'{"a":1}', qos=1, retain=True).wait_for_publish(5)
        sub.subscribe("uagv/#", qos=1)
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        pub._sock_close()  # an unclean drop (no DISCONNECT): the broker sends the will
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pub.loop_stop()
        sub.loop_stop()
        sub.disconnect()
    return got


def _expect_roundtrip(got: list[tuple[str, bytes, bool]]) -> None:
    assert ("uagv/v2/x/1/state", b'{"a":1}', True) in got, got
    assert any(t == "uagv/v2/x/1/connection" and p == b"CONNECTIONBROKEN" for t, p, _ in got), got


def test_embedded_broker_when_mosquitto_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge import demo_stack
    from edge.demo_stack import Stack, free_port

    monkeypatch.setattr(demo_stack, "mosquitto_binary", lambda: None)
    stack = Stack(tmp_path)
    port = free_port()
    try:
        child = stack.broker(port)  # auto: no Mosquitto here, so the embedded one
        assert child.name == "embedded-broker"
        assert "edge.demo_broker" in " ".join(psutil.Process(child.proc.pid).cmdline())
        _expect_roundtrip(_roundtrip(port))
        pid = child.proc.pid
    finally:
        stack.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "listening on 127.0.0.1" in child.tail() and "stopped" in child.tail()


def test_mosquitto_when_installed_and_refusals(tmp_path: Path) -> None:
    from edge.contracts.errors import DockgateError, ErrorCode
    from edge.demo_stack import Stack, free_port, mosquitto_binary

    assert mosquitto_binary() is not None, "make test installs Mosquitto"
    stack = Stack(tmp_path)
    port = free_port()
    try:
        child = stack.broker(port)  # auto: Mosquitto is installed here
        assert child.name == "mosquitto"
        _expect_roundtrip(_roundtrip(port))
    finally:
        stack.stop()
    with pytest.raises(DockgateError) as exc:
        stack.broker(free_port(), "rabbitmq")
    assert exc.value.code is ErrorCode.CONFIG_INVALID


@pytest.mark.slow
def test_headless_demo_on_the_embedded_broker(tmp_path: Path) -> None:
    """The whole demo with AGV orders over the embedded broker (what a machine without
    Mosquitto runs)."""
    result = subprocess.run(
        [*DEMO, "--headless", "--cartons", "6", "--broker", "embedded",
         "--workdir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-3000:]
    assert "embedded MQTT broker (amqtt) on :" in out
    summary = out.split("Dockgate demo: 6 cartons")[-1]
    assert "FAILED" not in summary
    assert "AGV orders completed" in summary
