"""The serial scanner against a real pty: reads, garbage, partial frames, unplug and re-plug,
software trigger with ACK. No mocks: pyserial opens the simulator's pty through its link."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.contracts.errors import ErrorCode
from firmware_bridge.ports import ConnectionStatus, LinkState, Scan, ScanEvent, ScannerReply
from firmware_bridge.serial.config import SerialScannerConfig
from firmware_bridge.serial.scanner import SerialScanner
from firmware_bridge.serial.sim import ScannerSimulator, carton_read, sscc


class Events:
    def __init__(self) -> None:
        self.q: queue.Queue[ScanEvent] = queue.Queue()
        self.seen: list[ScanEvent] = []

    def __call__(self, event: ScanEvent) -> None:
        self.seen.append(event)
        self.q.put(event)

    def wait_for(self, pred: Callable[[ScanEvent], bool], timeout: float = 5) -> ScanEvent:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.q.get(timeout=left)
            except queue.Empty:
                break
            if pred(event):
                return event
        raise AssertionError("event not seen in time")

    def scan(self, timeout: float = 5) -> Scan:
        event = self.wait_for(lambda e: isinstance(e, Scan), timeout)
        assert isinstance(event, Scan)
        return event

    def state(self, state: LinkState, timeout: float = 5) -> ConnectionStatus:
        event = self.wait_for(
            lambda e: isinstance(e, ConnectionStatus) and e.state == state, timeout
        )
        assert isinstance(event, ConnectionStatus)
        return event


Rig = tuple[ScannerSimulator, SerialScanner, Events, SerialScannerConfig]


def make(tmp_path: Path, **overrides: object) -> Rig:
    link = tmp_path / "scanner0"
    fields: dict[str, object] = {
        "port": str(link),
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.4,
        "frame_timeout_s": 0.2,
    }
    fields.update(overrides)
    cfg = SerialScannerConfig.model_validate(fields)
    trig_on, _ = cfg.trigger_bytes()
    prof = cfg.resolved_profile
    sim = ScannerSimulator(link, cfg.frame_spec(), trigger_on=trig_on, ack=bytes.fromhex(prof.ack))
    events = Events()
    return sim, SerialScanner(cfg, events), events, cfg


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    sim, scanner, events, cfg = make(tmp_path)
    sim.plug()
    scanner.start()
    try:
        yield sim, scanner, events, cfg
    finally:
        scanner.stop()
        sim.close()


def test_reads_arrive_with_identifier_timestamp_and_gs(rig: Rig) -> None:
    sim, _scanner, events, _ = rig
    events.state(LinkState.CONNECTED)
    symbology, data = carton_read(42)
    assert sim.send_read(symbology, data)
    scan = events.scan()
    assert (scan.symbology, scan.data, scan.seq) == ("]C1", data, 1)
    assert scan.ts.endswith("Z") and scan.with_identifier.startswith("]C100")
    assert b"\x1d10LOT42" in scan.data


def test_garbage_and_partial_frames_are_counted_and_skipped(rig: Rig) -> None:
    sim, scanner, events, _ = rig
    events.state(LinkState.CONNECTED)
    sim.send(sim.garbage())
    sim.send(b"]C10061414")  # partial read, then the line goes quiet past frame_timeout_s
    time.sleep(0.5)
    sim.send(b"]C1" + b"\x00\x01" + b"\r\n")
    sim.send_read("]E0", b"4006381333931")
    scan = events.scan()
    assert (scan.symbology, scan.text) == ("]E0", "4006381333931")
    status = scanner.status()
    assert status.counters["garbled"] == 3 and status.counters["scans"] == 1
    assert status.last_error == ErrorCode.SCANNER_FRAME_GARBLED
    assert status.state == LinkState.CONNECTED


def test_frames_split_across_writes(rig: Rig) -> None:
    sim, _, events, _ = rig
    events.state(LinkState.CONNECTED)
    _symbology, data = carton_read(7)
    raw = b"".join([b"]C1", data, b"\r\n"])
    for i in range(0, len(raw), 5):
        sim.send(raw[i : i + 5])
        time.sleep(0.01)
    assert events.scan().data == data


def test_unplug_and_replug_reconnects_with_backoff_and_reports_outage(rig: Rig) -> None:
    sim, scanner, events, _ = rig
    events.state(LinkState.CONNECTED)
    sim.unplug()
    down = events.state(LinkState.DISCONNECTED)
    assert down.last_error == ErrorCode.SCANNER_DISCONNECTED
    time.sleep(0.6)  # several failed reopen attempts: link gone
    waits = [
        float(e.last_error_message.rsplit("next try in ", 1)[1].split()[0])
        for e in events.seen
        if isinstance(e, ConnectionStatus) and "next try in" in e.last_error_message
    ]
    assert waits[:3] == [0.05, 0.1, 0.2] and max(waits) == 0.4  # doubling, capped
    sim.plug()
    up = events.state(LinkState.CONNECTED)
    assert up.last_error == ErrorCode.SCANNER_DISCONNECTED and "outage" in up.last_error_message
    symbology, data = carton_read(9)
    deadline = time.monotonic() + 5
    while not sim.send_read(symbology, data) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert events.scan().data == data
    counters = scanner.status().counters
    assert counters["reconnects"] == 1 and counters["disconnects"] == 1
    assert counters["outage_ms"] >= 500


def test_starts_while_port_missing_then_connects(tmp_path: Path) -> None:
    sim, scanner, events, _ = make(tmp_path)
    scanner.start()
    try:
        first = events.state(LinkState.DISCONNECTED)
        assert "cannot open" in first.last_error_message
        sim.plug()
        events.state(LinkState.CONNECTED)
        sim.send_read("]d2", b"0109501101530003")
        assert events.scan().symbology == "]d2"
    finally:
        scanner.stop()
        sim.close()
    assert scanner.status().state == LinkState.STOPPED


@pytest.mark.parametrize("profile", ["honeywell", "zebra", "datalogic"])
def test_software_trigger_per_profile(tmp_path: Path, profile: str) -> None:
    sim, scanner, events, cfg = make(
        tmp_path, profile=profile, trigger="software", trigger_window_s=0.1
    )
    sim.plug()
    sim.answer_triggers(("]Q3", b"00" + b"1" * 18))
    scanner.start()
    try:
        events.state(LinkState.CONNECTED)
        assert scanner.trigger()
        scan = events.scan()
        assert scan.symbology == "]Q3"
        trig_on, trig_off = cfg.trigger_bytes()
        deadline = time.monotonic() + 3
        while trig_off not in b"".join(sim.commands) and time.monotonic() < deadline:
            time.sleep(0.02)
        sent = b"".join(sim.commands)
        assert sent.startswith(trig_on) and trig_off in sent
        if profile == "zebra":
            replies = [e for e in events.seen if isinstance(e, ScannerReply)]
            assert replies and replies[0].accepted
        assert scanner.status().counters["garbled"] == 0
    finally:
        scanner.stop()
        sim.close()


def test_trigger_without_command_or_port_is_refused(tmp_path: Path) -> None:
    _, scanner, _, _ = make(tmp_path)
    assert scanner.trigger() is False  # trigger = none
    _, scanner, _, _ = make(tmp_path, profile="honeywell", trigger="software")
    assert scanner.trigger() is False  # not started: no port


def test_timeout_framing_with_stx_etx_over_the_pty(tmp_path: Path) -> None:
    # A scanner set to "no terminator" with STX/ETX: ETX ends the read.
    sim, scanner, events, _ = make(tmp_path, terminator="NONE", prefix="02", suffix="03")
    sim.plug()
    scanner.start()
    try:
        events.state(LinkState.CONNECTED)
        sim.send_read("]E0", b"4006381333931")
        assert events.scan().text == "4006381333931"
    finally:
        scanner.stop()
        sim.close()
    # Neither terminator nor suffix: a read ends after intercharacter_timeout_s of silence.
    sim, scanner, events, _ = make(tmp_path, terminator="NONE", intercharacter_timeout_s=0.05)
    sim.plug()
    scanner.start()
    try:
        events.state(LinkState.CONNECTED)
        sim.send(b"]d2010950")
        time.sleep(0.01)  # a pause shorter than the timeout does not split the read
        sim.send(b"1101530003")
        scan = events.scan()
        assert (scan.symbology, scan.text) == ("]d2", "0109501101530003")
        assert scanner.status().counters["garbled"] == 0
    finally:
        scanner.stop()
        sim.close()


def test_scan_parses_with_the_shared_gs1_code(rig: Rig) -> None:
    """End to end: a ]C1 label read over the pty parses (edge/codes, biip) to the right SSCC
    and lot, so it can be compared with the OCR read of the same carton."""
    from edge.codes.scan import parse_scan

    sim, _, events, _ = rig
    events.state(LinkState.CONNECTED)
    sim.send_read(*carton_read(123456, lot="L2611-A"))
    scan = events.scan()
    result = parse_scan(scan.with_identifier)
    assert result.ok, result.errors
    assert result.symbology == "]C1"
    assert result.fields["sscc"] == sscc(123456) and result.fields["lot"] == "L2611-A"
