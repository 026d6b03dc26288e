"""A scanner simulator on a real pseudo-terminal: reads, garbage, partial frames, unplugging.

The simulator owns the pty's master side and publishes the slave under a stable symlink (like
``/dev/serial/by-id/...``), so the scanner under test is configured with the link path.
:meth:`ScannerSimulator.unplug` closes the pty and removes the link (the port disappears);
:meth:`ScannerSimulator.plug` creates a new pty behind the same link.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import threading
import tty
from pathlib import Path

from firmware_bridge.serial.framing import FrameSpec, encode

GS = b"\x1d"


def sscc(serial_ref: int, company_prefix: str = "0614141") -> str:
    """A valid 18-digit SSCC (extension digit 0), GS1 mod-10 check digit appended."""
    body = ("0" + company_prefix + f"{serial_ref:0{16 - len(company_prefix)}d}")[:17]
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def carton_read(serial_ref: int, lot: str = "LOT42") -> tuple[str, bytes]:
    """A GS1-128 carton label read: ``]C1`` + (00) SSCC + GS + (10) lot."""
    return "]C1", b"00" + sscc(serial_ref).encode() + GS + b"10" + lot.encode()


class ScannerSimulator:
    """One simulated scanner behind ``link``. Thread-safe; call :meth:`close` when done."""

    def __init__(
        self,
        link: Path,
        spec: FrameSpec,
        *,
        trigger_on: bytes = b"",
        ack: bytes = b"",
        seed: int = 1,
    ) -> None:
        self.link = link
        self.spec = spec
        self.trigger_on = trigger_on
        self.ack = ack
        self.commands: list[bytes] = []  # everything the host wrote, for tests
        self.triggers = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self._next_read: tuple[str | None, bytes] | None = None
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def plug(self) -> str:
        """Create a pty and point the link at it; returns the pty's device path."""
        with self._lock:
            if self._master is not None:
                raise RuntimeError("already plugged")
            master, slave = os.openpty()
            # Raw before anything arrives: a cooked tty would turn CR into LF and echo.
            tty.setraw(slave)
            os.set_blocking(master, False)
            device = os.ttyname(slave)
            tmp = self.link.with_name(self.link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(device)
            tmp.replace(self.link)
            self._master, self._slave = master, slave
        return device

    def unplug(self) -> None:
        """The cable is pulled: the link disappears and the pty closes."""
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None

    def send(self, raw: bytes) -> bool:
        """Write raw bytes (garbage, partial frames); False if unplugged or nobody reads."""
        with self._lock:
            if self._master is None:
                return False
            try:
                return os.write(self._master, raw) == len(raw)
            except BlockingIOError:
                return False  # a real scanner's output is lost too when nobody reads

    def send_read(self, symbology: str | None, data: bytes) -> bool:
        """Send one well-formed read."""
        return self.send(encode(self.spec, symbology, data))

    def garbage(self, size: int = 12) -> bytes:
        """Line noise as at a wrong baud rate (invalid UTF-8 and control bytes), terminated."""
        noise = bytes(self._rng.choice((0x00, 0x8F, 0xC3, 0xFE, 0x07, 0xFF)) for _ in range(size))
        return noise + self.spec.end

    def answer_triggers(self, read: tuple[str | None, bytes]) -> None:
        """Answer each trigger command with ``read`` (and the ACK first, if configured)."""
        self._next_read = read
        if self._listener is None:
            self._stop.clear()
            self._listener = threading.Thread(target=self._listen, name="scanner-sim-listen")
            self._listener.start()

    def _listen(self) -> None:
        pending = b""
        while not self._stop.is_set():
            with self._lock:
                fd = self._master
            if fd is None:
                self._stop.wait(0.02)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.02)
                chunk = os.read(fd, 256) if ready else b""
            except OSError:  # unplugged under our feet, or the scanner closed its side
                self._stop.wait(0.02)
                continue
            if not chunk:
                continue
            self.commands.append(chunk)
            pending += chunk
            while self.trigger_on and self.trigger_on in pending:
                pending = pending.split(self.trigger_on, 1)[1]
                self.triggers += 1
                if self.ack:
                    self.send(self.ack)
                if self._next_read is not None:
                    self.send_read(*self._next_read)

    def close(self) -> None:
        """Stop the trigger listener and unplug."""
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
            self._listener = None
        self.unplug()
