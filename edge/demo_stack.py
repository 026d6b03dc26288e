"""The demo's peers as real child processes: cloud service, MQTT broker, AGV/PLC/scanner simulators.

Every child runs in its own session (so one Ctrl-C reaches the demo, which then stops the children
in order) and asks the kernel to SIGTERM it if the demo dies without cleaning up
(``PR_SET_PDEATHSIG``): nothing is left running either way. Output goes to one log file per child
in the workspace; secrets are never put on a command line (tokens and passwords go through the
environment or stdin).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge.contracts.errors import DockgateError, ErrorCode

PR_SET_PDEATHSIG = 1
BROKERS = ("auto", "mosquitto", "embedded")


def mosquitto_binary() -> str | None:
    """Mosquitto's path when installed (Debian puts it in /usr/sbin, often not on PATH)."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if not alive():
            raise RuntimeError(f"process for port {port} exited")
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout:.0f}s")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def dockgate_argv(*args: str) -> list[str]:
    """``dockgate ARGS`` with this interpreter (works from a checkout without an entry point)."""
    return [sys.executable, "-m", "edge.cli_main", *args]


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the child's process group (uvicorn workers too), SIGKILL if it lingers."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@dataclass
class Stack:
    """The children of one demo run, stopped in reverse start order."""

    root: Path
    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv from this module, no shell
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def run(self, name: str, *args: str, env: dict[str, str] | None = None, stdin: str = "") -> str:
        """A one-shot ``dockgate`` command; its output, or a clear error with its log."""
        result = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments, no shell
            dockgate_argv(*args),
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"dockgate {name} failed: {result.stdout[-1500:]}{result.stderr}")
        return result.stdout

    def stop(self) -> None:
        while self.children:
            self.children.pop().stop()

    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.children]

    # the peers -------------------------------------------------------------------------------
    def cloud(self, config: Path, port: int) -> Child:
        child = self.spawn(
            "cloud", dockgate_argv("cloud", "serve", "--config", str(config), "--port", str(port))
        )
        self._ready(child, port, 90)
        return child

    def broker(self, port: int, kind: str = "auto") -> Child:
        """The MQTT broker: Mosquitto when installed (``auto``) or asked for, else the embedded
        Python broker (:mod:`edge.demo_broker`, amqtt). The child's name says which one runs."""
        if kind not in BROKERS:
            raise DockgateError(
                ErrorCode.CONFIG_INVALID, f"broker {kind!r}: expected one of {', '.join(BROKERS)}"
            )
        binary = mosquitto_binary() if kind != "embedded" else None
        if binary is None and kind == "mosquitto":
            raise DockgateError(
                ErrorCode.CONFIG_INVALID,
                "no Mosquitto: install it (apt-get install mosquitto) or use the embedded broker",
            )
        if binary is None:
            argv = [sys.executable, "-m", "edge.demo_broker", "--port", str(port)]
            child = self.spawn("embedded-broker", argv)
            self._ready(child, port, 30)
            return child
        conf = self.root / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n"
        )
        child = self.spawn("mosquitto", [binary, "-c", str(conf)])
        self._ready(child, port, 15)
        return child

    def agvs(self, broker_port: int, sitemap: Path, count: int = 3) -> Child:
        # faster than life so orders complete while the demo watches: 4 m/s, 0.3 s pick/drop
        argv = dockgate_argv(
            "sim", "agv", "--count", str(count), "--port", str(broker_port),
            "--sitemap", str(sitemap), "--speed", "4", "--action-seconds", "0.3",
            "--state-interval", "0.5",
        )  # fmt: skip
        return self.spawn("agv-sim", argv)

    def plc(self, port: int) -> Child:
        # rate 0: cartons are found by the camera (presence), not by the PLC's photo-eye
        argv = dockgate_argv("sim", "plc", "--port", str(port), "--rate", "0")
        child = self.spawn("plc-sim", argv)
        self._ready(child, port, 30)
        return child

    def scanner(self, link: Path) -> Child:
        child = self.spawn(
            "scanner-sim", dockgate_argv("sim", "scanner", "--link", str(link), "--rate", "30")
        )
        deadline = time.monotonic() + 30
        while not link.exists():
            if not child.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"scanner simulator did not start: {child.tail()}")
            time.sleep(0.05)
        return child

    @staticmethod
    def _ready(child: Child, port: int, timeout: float) -> None:
        try:
            wait_for_port(port, timeout, child.alive)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{child.name} did not start ({exc}): {child.tail()}") from None
