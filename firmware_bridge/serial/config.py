"""``[scanner]`` config: which scanner, its line settings and framing, profile defaults.

Scanner families differ in terminators and host commands; those live in ``profiles.toml``
(data), and any key set here wins over the profile. No pyserial import here: the edge config
loads this module.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.contracts.settings import StrictModel
from firmware_bridge.serial.framing import FrameSpec

Terminator = Literal["CR", "LF", "CRLF", "NONE"]
TERMINATORS: dict[str, bytes] = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n", "NONE": b""}


def _hex(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ValueError("expected hex bytes such as '16 54 0D'") from None
    return value


class ScannerProfile(StrictModel):
    """One scanner family's defaults (a table in profiles.toml)."""

    description: str = Field(description="what the profile is for")
    baudrate: int = Field(9600, ge=1200, le=921600, description="line speed in baud")
    terminator: Terminator = Field("CRLF", description="end of a read")
    trigger_on: str = Field("", description="hex bytes that start a read (software trigger)")
    trigger_off: str = Field("", description="hex bytes that stop a read")
    ack: str = Field("", description="hex bytes of the scanner's command ACK, if any")
    nak: str = Field("", description="hex bytes of the scanner's command NAK, if any")

    _check_hex = field_validator("trigger_on", "trigger_off", "ack", "nak")(_hex)


@cache
def profiles() -> dict[str, ScannerProfile]:
    """The shipped profiles (``profiles.toml`` next to this module)."""
    text = resources.files("firmware_bridge.serial").joinpath("profiles.toml").read_text()
    return {name: ScannerProfile(**table) for name, table in tomllib.loads(text).items()}


class SerialScannerConfig(StrictModel):
    """A fixed-mount barcode scanner on RS-232 or USB-serial."""

    type: Literal["serial"] = Field("serial", description="scanner adapter: serial")
    name: str = Field(
        "scanner-1", min_length=1, max_length=40, description="source name put on every scan"
    )
    port: str = Field(
        min_length=1,
        max_length=255,
        description="serial device, preferably a stable /dev/serial/by-id/... link",
    )
    profile: str = Field("generic", description="scanner family defaults from profiles.toml")
    baudrate: int | None = Field(
        None, ge=1200, le=921600, description="line speed (default: the profile's)"
    )
    bytesize: Literal[7, 8] = Field(8, description="data bits")
    parity: Literal["N", "E", "O"] = Field("N", description="parity: N none, E even, O odd")
    stopbits: Literal[1, 2] = Field(1, description="stop bits")
    terminator: Terminator | None = Field(
        None, description="end of a read: CR, LF, CRLF, or NONE for timeout framing"
    )
    prefix: str = Field("", max_length=32, description="hex bytes the scanner puts before reads")
    suffix: str = Field("", max_length=32, description="hex bytes the scanner puts after reads")
    require_aim_id: bool = Field(
        True, description="count reads without an AIM identifier (]C1, ]d2, ...) as garbled"
    )
    trigger: Literal["none", "software"] = Field(
        "none", description="software: the edge sends the trigger command on each photo-eye"
    )
    trigger_on: str | None = Field(None, description="hex trigger command (default: profile)")
    trigger_off: str | None = Field(None, description="hex release command (default: profile)")
    trigger_window_s: float = Field(
        0.5, gt=0, le=10, description="seconds after the trigger before the release is sent"
    )
    intercharacter_timeout_s: float = Field(
        0.05, gt=0, le=2, description="quiet time that ends a read when terminator is NONE"
    )
    frame_timeout_s: float = Field(
        0.5, gt=0, le=10, description="quiet time after which a partial read is dropped"
    )
    max_frame_bytes: int = Field(512, ge=16, le=8192, description="longest accepted read")
    reconnect_initial_s: float = Field(
        0.5, gt=0, le=60, description="first wait before reopening a lost port (then doubles)"
    )
    reconnect_max_s: float = Field(30.0, gt=0, le=600, description="longest wait between tries")

    _check_hex = field_validator("prefix", "suffix", "trigger_on", "trigger_off")(_hex)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in profiles():
            raise ValueError(f"unknown profile; known: {', '.join(sorted(profiles()))}")
        return value

    @model_validator(mode="after")
    def _backoff_order(self) -> SerialScannerConfig:
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be >= reconnect_initial_s")
        return self

    @property
    def resolved_profile(self) -> ScannerProfile:
        return profiles()[self.profile]

    def line_settings(self) -> dict[str, object]:
        """Keyword arguments for ``serial.Serial``."""
        return {
            "baudrate": self.baudrate or self.resolved_profile.baudrate,
            "bytesize": self.bytesize,
            "parity": self.parity,
            "stopbits": self.stopbits,
        }

    def trigger_bytes(self) -> tuple[bytes, bytes]:
        """(trigger, release) commands; empty when the trigger is off or not defined."""
        if self.trigger == "none":
            return b"", b""
        prof = self.resolved_profile
        on = self.trigger_on if self.trigger_on is not None else prof.trigger_on
        off = self.trigger_off if self.trigger_off is not None else prof.trigger_off
        return bytes.fromhex(on), bytes.fromhex(off)

    def frame_spec(self) -> FrameSpec:
        """The pure framer's view of this config."""
        prof = self.resolved_profile
        replies = tuple(
            (bytes.fromhex(raw), accepted)
            for raw, accepted in ((prof.ack, True), (prof.nak, False))
            if raw
        )
        return FrameSpec(
            terminator=TERMINATORS[self.terminator or prof.terminator],
            prefix=bytes.fromhex(self.prefix),
            suffix=bytes.fromhex(self.suffix),
            require_identifier=self.require_aim_id,
            max_frame_bytes=self.max_frame_bytes,
            replies=replies,
        )


class NoScannerConfig(StrictModel):
    """No serial scanner on this node."""

    type: Literal["none"] = Field("none", description="scanner adapter: none")
