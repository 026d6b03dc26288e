"""A serial barcode scanner: owns the port, reconnects with a doubling backoff, reports outages.

Framing is :mod:`firmware_bridge.serial.framing` (pure); this module only moves bytes, keeps
time (timeout framing, stale partial reads) and turns frames into :class:`Scan` facts. One
daemon-free reader thread per scanner; :meth:`SerialScanner.stop` joins it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

import serial

from edge.contracts.errors import ErrorCode
from firmware_bridge.ports import ConnectionStatus, LinkState, Scan, ScannerReply, ScanSink
from firmware_bridge.serial.config import SerialScannerConfig
from firmware_bridge.serial.framing import Frame, Framer, FrameResult, Garbled, Reply

log = logging.getLogger(__name__)

# Upper bound on how long the reader blocks in one read: it bounds stop() latency too.
_READ_SLICE_S = 0.02
_COUNTERS = ("scans", "garbled", "replies", "disconnects", "reconnects", "triggers", "outage_ms")


class SerialScanner:
    """:class:`firmware_bridge.ports.ScanSource` over pyserial."""

    def __init__(self, config: SerialScannerConfig, sink: ScanSink) -> None:
        self.config = config
        self._sink = sink
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._port: serial.Serial | None = None
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._release_at: float | None = None
        self._trigger_on, self._trigger_off = config.trigger_bytes()
        self._counters = dict.fromkeys(_COUNTERS, 0)
        self._status = ConnectionStatus(peer=config.name, state=LinkState.STOPPED)

    # -- ScanSource -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("scanner already started")
        self._stop.clear()
        self._publish(LinkState.CONNECTING)
        self._thread = threading.Thread(
            target=self._run, name=f"scanner-{self.config.name}", daemon=False
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._publish(LinkState.STOPPED)

    def trigger(self) -> bool:
        if not self._trigger_on:
            return False
        with self._lock:
            port = self._port
            if port is None:
                return False
            try:
                port.write(self._trigger_on)
            except (serial.SerialException, OSError) as exc:
                log.warning("%s: trigger not sent: %s", self.config.name, exc)
                return False
            self._counters["triggers"] += 1
            if self._trigger_off:
                self._release_at = time.monotonic() + self.config.trigger_window_s
        return True

    def status(self) -> ConnectionStatus:
        with self._lock:
            return replace(self._status, counters=dict(self._counters))

    # -- reader thread ----------------------------------------------------------------------
    def _run(self) -> None:
        cfg = self.config
        delay = cfg.reconnect_initial_s
        lost_at: float | None = None
        while not self._stop.is_set():
            try:
                port = serial.Serial(
                    cfg.port, timeout=_READ_SLICE_S, exclusive=True, **cfg.line_settings()
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                lost_at = lost_at if lost_at is not None else time.monotonic()
                self._publish(
                    LinkState.DISCONNECTED,
                    ErrorCode.SCANNER_DISCONNECTED,
                    f"cannot open {cfg.port}: {exc}; next try in {delay:g} s",
                )
                self._stop.wait(delay)
                delay = min(delay * 2, cfg.reconnect_max_s)
                continue
            delay = cfg.reconnect_initial_s
            self._on_connected(port, lost_at)
            lost_at = None
            try:
                self._read_loop(port)
            except Exception as exc:  # port errors, and any surprise: reopen, never die
                if not isinstance(exc, serial.SerialException | OSError):
                    log.exception("%s: unexpected error; reopening the port", cfg.name)
                lost_at = time.monotonic()
                with self._lock:
                    self._counters["disconnects"] += 1
                self._publish(
                    LinkState.DISCONNECTED,
                    ErrorCode.SCANNER_DISCONNECTED,
                    f"port {cfg.port} lost: {exc}; reconnecting",
                )
            finally:
                with self._lock:
                    self._port = None
                    self._release_at = None
                port.close()
            # A port that opens but fails at once must not spin: pause before reopening.
            self._stop.wait(cfg.reconnect_initial_s)

    def _on_connected(self, port: serial.Serial, lost_at: float | None) -> None:
        with self._lock:
            self._port = port
            if lost_at is not None:
                outage = time.monotonic() - lost_at
                self._counters["reconnects"] += 1
                self._counters["outage_ms"] += int(outage * 1000)
        if lost_at is None:
            self._publish(LinkState.CONNECTED)
        else:
            log.warning("%s: port back after %.1f s outage", self.config.name, outage)
            self._publish(
                LinkState.CONNECTED,
                ErrorCode.SCANNER_DISCONNECTED,
                f"reconnected after a {outage:.1f} s outage",
            )

    def _read_loop(self, port: serial.Serial) -> None:
        cfg = self.config
        framer = Framer(cfg.frame_spec())
        quiet_s = cfg.intercharacter_timeout_s if not framer.spec.end else cfg.frame_timeout_s
        buf = b""
        last_rx = time.monotonic()
        while not self._stop.is_set():
            chunk = port.read(max(1, port.in_waiting))
            now = time.monotonic()
            if chunk:
                buf += chunk
                last_rx = now
                results, used = framer.decode(buf)
                buf = buf[used:]
                self._emit(results)
            elif buf and now - last_rx >= quiet_s:
                self._emit(framer.flush(buf))
                buf = b""
            self._maybe_release(port, now)
        if buf:
            self._emit(framer.flush(buf))

    def _maybe_release(self, port: serial.Serial, now: float) -> None:
        with self._lock:
            due = self._release_at is not None and now >= self._release_at
            if due:
                self._release_at = None
        if due:
            port.write(self._trigger_off)

    def _emit(self, results: list[FrameResult]) -> None:
        for item in results:
            if isinstance(item, Frame):
                with self._lock:
                    self._seq += 1
                    self._counters["scans"] += 1
                    seq = self._seq
                self._sink(Scan(self.config.name, seq, item.symbology, item.data))
            elif isinstance(item, Garbled):
                self._on_garbled(item)
            elif isinstance(item, Reply):
                with self._lock:
                    self._counters["replies"] += 1
                self._sink(ScannerReply(self.config.name, item.accepted, item.raw))

    def _on_garbled(self, item: Garbled) -> None:
        message = f"garbled frame skipped ({item.reason}): {item.raw[:40]!r}"
        log.warning("%s: %s", self.config.name, message)
        with self._lock:
            self._counters["garbled"] += 1
            # The link is fine: keep the state, record the error for the panel.
            self._status = replace(
                self._status,
                last_error=ErrorCode.SCANNER_FRAME_GARBLED,
                last_error_message=message,
            )

    def _publish(self, state: LinkState, error: ErrorCode | None = None, message: str = "") -> None:
        with self._lock:
            previous = self._status
            if error is None:  # keep the last error visible until a new one replaces it
                error, message = previous.last_error, previous.last_error_message
            self._status = ConnectionStatus(
                peer=self.config.name,
                state=state,
                last_error=error,
                last_error_message=message,
                counters=dict(self._counters),
            )
            status = self._status
        if previous.state != state or previous.last_error_message != message:
            self._sink(status)
