"""Scanner framing as a pure incremental parser: bytes in, frames out, no I/O and no clock.

A read arrives as ``[prefix][AIM identifier][data][suffix][terminator]``. :meth:`Framer.decode`
returns the frames complete in a buffer and how many bytes it used; the caller keeps the rest
and calls again with more bytes appended (0 used means "need more"). Splitting a stream at any
byte gives the same frames as feeding it at once (hypothesis checks this).

Time-based decisions (inter-character timeout framing, stale partial frames) belong to the
port reader, which calls :meth:`Framer.flush` when the line has been quiet long enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware_bridge.serial.aim import split_identifier

# Control characters a GS1 or ISO/IEC 15434 payload may legitimately carry: EOT, FS, GS, RS.
_ALLOWED_CONTROL = frozenset({0x04, 0x1C, 0x1D, 0x1E})
_LINE_ENDS = b"\r\n"


@dataclass(frozen=True)
class FrameSpec:
    """How one scanner frames its reads (built from the scanner config and its profile)."""

    terminator: bytes = b"\r\n"  # empty: frames end by inter-character timeout (flush)
    prefix: bytes = b""
    suffix: bytes = b""
    require_identifier: bool = True
    max_frame_bytes: int = 512
    # Exact host-command replies the scanner may send between reads, e.g. Zebra SSI ACK/NAK.
    replies: tuple[tuple[bytes, bool], ...] = ()

    @property
    def end(self) -> bytes:
        return self.suffix + self.terminator


@dataclass(frozen=True)
class Frame:
    """A well-formed read: identifier (or None) and data, framing removed."""

    symbology: str | None
    data: bytes


@dataclass(frozen=True)
class Garbled:
    """Bytes that were not a well-formed read; counted and skipped. ``raw`` is capped."""

    raw: bytes
    reason: str


@dataclass(frozen=True)
class Reply:
    """A host-command reply (ACK when ``accepted``, else NAK)."""

    raw: bytes
    accepted: bool


FrameResult = Frame | Garbled | Reply


@dataclass
class Framer:
    """Incremental framer for one scanner. Only state: whether it is skipping an overlong frame."""

    spec: FrameSpec
    _skipping: bool = field(default=False, init=False)

    def decode(self, buffer: bytes) -> tuple[list[FrameResult], int]:
        """Frames complete in ``buffer`` and the number of bytes consumed."""
        out: list[FrameResult] = []
        pos = 0
        end = self.spec.end
        while pos < len(buffer):
            if self._skipping:
                pos, done = self._skip(buffer, pos)
                if not done:
                    break
                continue
            while pos < len(buffer) and buffer[pos] in _LINE_ENDS:
                pos += 1  # stray CR/LF between frames (e.g. CR LF sent, CR configured)
            if pos == len(buffer):
                break
            reply, need_more = self._match_reply(buffer, pos)
            if need_more:
                break
            if reply is not None:
                out.append(reply)
                pos += len(reply.raw)
                continue
            if not end:
                break  # timeout framing: only flush() closes a frame
            idx = buffer.find(end, pos)
            if idx < 0:
                if len(buffer) - pos > self.spec.max_frame_bytes + len(end):
                    out.append(self._too_long(buffer[pos:]))
                    self._skipping = True
                    continue
                break
            out.append(self._parse(buffer[pos:idx]))
            pos = idx + len(end)
        return out, pos

    def flush(self, buffer: bytes) -> list[FrameResult]:
        """Close whatever is left after :meth:`decode` because the line went quiet."""
        if self._skipping:
            self._skipping = False
            return []
        rest = buffer.strip(_LINE_ENDS)
        if not rest:
            return []
        if self.spec.end:
            return [Garbled(rest[: self.spec.max_frame_bytes], "partial frame: no terminator")]
        return [self._parse(rest)]

    def _skip(self, buffer: bytes, pos: int) -> tuple[int, bool]:
        end = self.spec.end
        idx = buffer.find(end, pos)
        if idx >= 0:
            self._skipping = False
            return idx + len(end), True
        # Keep a possible partial terminator at the tail for the next call.
        return max(pos, len(buffer) - (len(end) - 1)), False

    def _match_reply(self, buffer: bytes, pos: int) -> tuple[Reply | None, bool]:
        rest = buffer[pos:]
        for raw, accepted in self.spec.replies:
            if rest.startswith(raw):
                return Reply(raw, accepted), False
            if raw.startswith(rest):
                return None, True
        return None, False

    def _too_long(self, frame: bytes) -> Garbled:
        limit = self.spec.max_frame_bytes
        return Garbled(frame[: limit + 1], f"frame longer than {limit} bytes")

    def _parse(self, frame: bytes) -> FrameResult:
        spec = self.spec
        if len(frame) > spec.max_frame_bytes:
            return self._too_long(frame)
        if spec.prefix:
            if not frame.startswith(spec.prefix):
                return Garbled(frame, "missing prefix")
            frame = frame[len(spec.prefix) :]
        symbology, data = split_identifier(frame)
        if symbology is None and spec.require_identifier:
            return Garbled(frame, "no AIM symbology identifier")
        if not data:
            return Garbled(frame, "empty read")
        problem = _payload_problem(data)
        if problem:
            return Garbled(frame, problem)
        return Frame(symbology, data)


def _payload_problem(data: bytes) -> str:
    """Why ``data`` cannot be a scanner payload, or "" if it can (line noise fails here)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8 (line noise or wrong baud rate?)"
    for byte in data:
        if (byte < 0x20 or byte == 0x7F) and byte not in _ALLOWED_CONTROL:
            return f"control character 0x{byte:02X} in data"
    return ""


def encode(spec: FrameSpec, symbology: str | None, data: bytes) -> bytes:
    """The bytes a scanner configured as ``spec`` sends for one read (simulator and tests)."""
    return spec.prefix + (symbology or "").encode("ascii") + data + spec.suffix + spec.terminator
