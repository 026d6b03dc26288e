"""Fuzzing line I/O input: scanner framing (firmware_bridge/serial/framing.py) and Modbus
register decoding (firmware_bridge/modbus/watch.py).

Framer: random byte streams split at random points never raise, never consume more than they
were given, keep at most ``max_frame_bytes`` + terminator of an unfinished frame (bounded
memory for the caller's buffer), cap every Garbled's ``raw``, and give the same frames however
the stream is split. Modbus: any register/bit payload a PLC (or line noise) can return decodes
to a Reading or fails with a ``PLC_*`` code, never another exception.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.contracts.errors import DockgateError
from firmware_bridge.modbus.regmap import RegisterMap
from firmware_bridge.modbus.watch import decode_reading
from firmware_bridge.serial.framing import Frame, Framer, FrameResult, FrameSpec, Garbled, encode
from tests.fuzz.budget import budget

specs = st.builds(
    FrameSpec,
    terminator=st.sampled_from([b"\r\n", b"\r", b"\n", b"\x03", b""]),
    prefix=st.sampled_from([b"", b"\x02", b"PX"]),
    suffix=st.sampled_from([b"", b"\x03"]),
    require_identifier=st.booleans(),
    max_frame_bytes=st.integers(16, 64),
    replies=st.sampled_from([(), ((b"\x06", True), (b"\x15", False))]),
)
noise = st.sampled_from(
    [b"\r", b"\n", b"\x02", b"\x03", b"\x06", b"\x15", b"]C1", b"\x1d", b"\xff"]
)


def _feed(spec: FrameSpec, chunks: list[bytes]) -> list[FrameResult]:
    framer, buffer, out = Framer(spec), b"", []
    for chunk in chunks:
        buffer += chunk
        got, used = framer.decode(buffer)
        assert 0 <= used <= len(buffer)
        buffer = buffer[used:]
        out += got
        # what the caller must keep is bounded (terminator framing only; with timeout framing
        # the port reader flushes on silence)
        if spec.end:
            longest = (
                spec.max_frame_bytes
                + len(spec.end)
                + max((len(r) for r, _ in spec.replies), default=0)
            )
            assert len(buffer) <= longest + len(chunk), (len(buffer), spec)
    out += framer.flush(buffer)
    for r in out:
        if isinstance(r, Garbled):
            assert len(r.raw) <= spec.max_frame_bytes + 1 + len(spec.prefix) and r.reason
        elif isinstance(r, Frame):
            assert len(r.data) <= spec.max_frame_bytes
    return out


@budget(400)
@given(specs, st.lists(st.binary(max_size=40) | noise, max_size=30), st.data())
def test_random_streams(spec: FrameSpec, parts: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(parts)
    whole = _feed(spec, [stream])
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    if spec.end:  # timeout framing has no in-band boundary: only flush() ends a frame
        assert _feed(spec, chunks) == whole


@budget(300)
@given(specs, st.lists(st.binary(max_size=30), min_size=1, max_size=5), st.binary(max_size=20))
def test_valid_frames_among_noise(spec: FrameSpec, payloads: list[bytes], junk: bytes) -> None:
    stream = junk + b"".join(encode(spec, "]C1", p) for p in payloads)
    _feed(spec, [stream])


def test_endless_line_without_terminator_is_bounded() -> None:
    spec = FrameSpec(max_frame_bytes=512)
    framer, buffer, garbled = Framer(spec), b"", 0
    for _ in range(2000):  # 2 MB of noise with no CR/LF, fed like a serial port would
        buffer += b"A" * 1024
        got, used = framer.decode(buffer)
        buffer = buffer[used:]
        garbled += sum(isinstance(r, Garbled) for r in got)
        assert len(buffer) <= 512 + 2 + 1024
    assert garbled == 1  # one overlong frame reported, the rest skipped


REGS = RegisterMap()


@budget(300)
@given(
    st.lists(st.booleans(), max_size=64),
    st.lists(st.integers(0, 0xFFFF), max_size=32),
    st.sampled_from(["ABCD", "CDAB"]),
)
def test_modbus_decoding(bits: list[bool], words: list[int], order: str) -> None:
    regs = REGS.model_copy(update={"word_order": order})
    di_first, di_count = regs.input_span()
    ir_first, ir_count = regs.input_registers.span()
    try:
        reading = decode_reading(regs, bits, di_first, words, ir_first, 0.0)
    except DockgateError as exc:
        assert exc.code.value.startswith("PLC_")
        assert len(bits) < di_count or len(words) < ir_count
        return
    assert 0 <= reading.scan_id <= 0xFFFFFFFF
    assert 0 <= reading.plc_heartbeat <= 0xFFFF and 0 <= reading.status_word <= 0xFFFF
