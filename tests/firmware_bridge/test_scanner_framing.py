"""The pure framer: split-invariance (hypothesis), profiles, garbage, partial and long frames."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.serial.aim import GS1_ELEMENT_STRING, describe, split_identifier
from firmware_bridge.serial.config import SerialScannerConfig
from firmware_bridge.serial.framing import Frame, Framer, FrameResult, FrameSpec, Garbled, encode
from firmware_bridge.serial.sim import carton_read, sscc

SPECS = [
    FrameSpec(terminator=b"\r\n"),
    FrameSpec(terminator=b"\r"),
    FrameSpec(terminator=b"\n", prefix=b"\x02", suffix=b"\x03"),
    FrameSpec(terminator=b"\r\n", replies=((b"\x04\xd0\x00\x00\xff\x2c", True),)),
    FrameSpec(terminator=b"\r", require_identifier=False, max_frame_bytes=40),
]
IDS = st.sampled_from(["]C1", "]d2", "]Q3", "]E0", "]C0"])
PAYLOAD = st.binary(min_size=1, max_size=60).map(
    lambda b: bytes(0x20 + x % 0x5F for x in b) + b"\x1d10LOT"
)
GARBAGE = st.binary(min_size=1, max_size=30)


def feed(framer: Framer, chunks: list[bytes]) -> list[FrameResult]:
    out: list[FrameResult] = []
    buf = b""
    for chunk in chunks:
        buf += chunk
        results, used = framer.decode(buf)
        out += results
        buf = buf[used:]
    return out


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    parts, last = [], 0
    for p in [*points, len(stream)]:
        parts.append(stream[last:p])
        last = p
    return parts


@settings(max_examples=150, deadline=None)
@given(
    spec_index=st.integers(0, len(SPECS) - 1),
    items=st.lists(st.one_of(st.tuples(IDS, PAYLOAD), GARBAGE), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_any_split_gives_the_same_frames(
    spec_index: int, items: list[tuple[str, bytes] | bytes], cuts: list[int]
) -> None:
    spec = SPECS[spec_index]
    stream = b"".join(
        encode(spec, i[0], i[1]) if isinstance(i, tuple) else i + spec.end for i in items
    )
    whole = feed(Framer(spec), [stream])
    assert feed(Framer(spec), split(stream, cuts)) == whole
    assert feed(Framer(spec), [bytes([b]) for b in stream]) == whole
    # every well-formed read survives, in order, whatever garbage surrounds it
    if spec.max_frame_bytes >= 80:
        delivered = iter(whole)
        for item in items:
            if isinstance(item, tuple):
                assert Frame(item[0], item[1]) in delivered  # consumes: checks order too


def test_gs1_128_read_keeps_identifier_and_gs() -> None:
    symbology, data = carton_read(7)
    spec = FrameSpec(terminator=b"\r\n")
    frames, used = Framer(spec).decode(encode(spec, symbology, data))
    assert frames == [Frame("]C1", data)]
    assert b"\x1d" in data and data.startswith(b"00" + sscc(7).encode())
    assert used == len(encode(spec, symbology, data))


def test_need_more_returns_zero_used() -> None:
    framer = Framer(FrameSpec(terminator=b"\r\n"))
    assert framer.decode(b"]C100123") == ([], 0)
    assert framer.decode(b"]C100123\r") == ([], 0)


def test_garbage_and_partials_are_counted_not_delivered() -> None:
    spec = FrameSpec(terminator=b"\r")
    framer = Framer(spec)
    results, _ = framer.decode(b"]C1\x00\xff\xfe\r]C1ok\r]C1a\x07b\r")
    assert isinstance(results[0], Garbled) and "UTF-8" in results[0].reason
    assert results[1] == Frame("]C1", b"ok")
    assert isinstance(results[2], Garbled) and "0x07" in results[2].reason
    results, _ = framer.decode(b"no-aim-id\r")
    assert isinstance(results[0], Garbled) and "identifier" in results[0].reason
    assert framer.flush(b"]C1half") == [Garbled(b"]C1half", "partial frame: no terminator")]


def test_overlong_frame_is_skipped_to_its_terminator() -> None:
    spec = FrameSpec(terminator=b"\r\n", max_frame_bytes=16)
    framer = Framer(spec)
    results, used = framer.decode(b"]C1" + b"9" * 100)
    assert len(results) == 1 and isinstance(results[0], Garbled) and used > 90
    results, _ = framer.decode(b"999\r\n]C1ok\r\n")
    assert results == [Frame("]C1", b"ok")]


def test_timeout_framing_closes_on_flush() -> None:
    framer = Framer(FrameSpec(terminator=b""))
    assert framer.decode(b"]d2010950110153000") == ([], 0)
    assert framer.flush(b"]d2010950110153000") == [Frame("]d2", b"010950110153000")]


def test_profiles_are_configuration() -> None:
    honeywell = SerialScannerConfig(port="/dev/x", profile="honeywell", trigger="software")
    assert honeywell.frame_spec().terminator == b"\r"
    assert honeywell.trigger_bytes() == (b"\x16T\r", b"\x16U\r")
    assert honeywell.line_settings()["baudrate"] == 115200
    zebra = SerialScannerConfig(port="/dev/x", profile="zebra", terminator="LF")
    assert zebra.frame_spec().terminator == b"\n"
    assert zebra.frame_spec().replies[0] == (b"\x04\xd0\x00\x00\xff\x2c", True)
    assert zebra.trigger_bytes() == (b"", b"")  # trigger = none
    datalogic = SerialScannerConfig(port="/dev/x", profile="datalogic", trigger="software")
    assert datalogic.trigger_bytes() == (b"T", b"X")


def test_aim_identifiers() -> None:
    assert split_identifier(b"]C100123") == ("]C1", b"00123")
    assert split_identifier(b"]]C1") == (None, b"]]C1")
    assert split_identifier(b"4006381333931") == (None, b"4006381333931")
    assert describe("]d2") == "GS1 DataMatrix" and "]E0" not in GS1_ELEMENT_STRING
