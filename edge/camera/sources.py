"""Frame sources behind one interface: OpenCV ``VideoCapture`` (USB, RTSP/HTTP, video file),
a folder of images, and a synthetic generator for tests and the demo.

A source yields frames until it ends (a file or folder without ``loop``) or is closed. Camera
loss is not an end: the OpenCV source reports ``CAMERA_LOST`` through its state, reconnects with
a doubling delay, and carries on.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.frame import Frame
from edge.camera.settings import (
    CameraConfig,
    DirectorySource,
    FileSource,
    UrlSource,
    UsbSource,
)
from edge.contracts.errors import ErrorCode

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class SourceState:
    """What the panel shows about a camera."""

    connected: bool = False
    frames: int = 0
    losses: int = 0
    last_error: ErrorCode | None = None
    last_error_text: str = ""


class FrameSource(Protocol):
    source_id: str
    state: SourceState

    def frames(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


class _Base:
    def __init__(self, source_id: str) -> None:
        self.source_id = source_id
        self.state = SourceState()
        self._closed = threading.Event()
        self._ids = itertools.count(1)

    def _frame(self, image: npt.NDArray[np.uint8]) -> Frame:
        self.state.frames += 1
        return Frame(image, next(self._ids), time.monotonic(), self.source_id)

    def close(self) -> None:
        self._closed.set()


class OpenCVSource(_Base):
    """USB index, stream URL or video file through ``cv2.VideoCapture``."""

    def __init__(
        self,
        target: int | str,
        *,
        source_id: str = "camera",
        loop: bool = False,
        is_file: bool = False,
        reconnect_max_s: float = 30.0,
    ) -> None:
        super().__init__(source_id)
        self.target = target
        self.loop = loop
        self.is_file = is_file
        self.reconnect_max_s = reconnect_max_s

    def frames(self) -> Iterator[Frame]:
        delay = 0.5
        while not self._closed.is_set():
            cap = cv2.VideoCapture(self.target)
            if not cap.isOpened():
                cap.release()
                if self.is_file:
                    self._lost(f"cannot open video file {self.target}")
                    return
                self._lost(f"cannot open camera {self.target}; retrying in {delay:.1f}s")
                self._closed.wait(delay)
                delay = min(delay * 2, self.reconnect_max_s)
                continue
            self.state.connected = True
            delay = 0.5
            try:
                while not self._closed.is_set():
                    ok, image = cap.read()
                    if not ok or image is None:
                        break
                    yield self._frame(np.ascontiguousarray(image, dtype=np.uint8))
            finally:
                cap.release()
                self.state.connected = False
            if self.is_file and not self.loop:
                return
            if not self.is_file:
                self._lost(f"camera {self.target} stopped delivering frames; reconnecting")

    def _lost(self, text: str) -> None:
        self.state.losses += 1
        self.state.last_error = ErrorCode.CAMERA_LOST
        self.state.last_error_text = text
        log.warning("%s: %s", ErrorCode.CAMERA_LOST.value, text)


class DirectoryFrameSource(_Base):
    """Every image in a folder, in name order; unreadable files are skipped and counted."""

    def __init__(
        self, path: Path, *, source_id: str = "directory", loop: bool = False, fps: float = 0.0
    ) -> None:
        super().__init__(source_id)
        self.path = path
        self.loop = loop
        self.period = 1.0 / fps if fps > 0 else 0.0
        self.skipped = 0

    def files(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def frames(self) -> Iterator[Frame]:
        self.state.connected = True
        while not self._closed.is_set():
            files = self.files()
            for file in files:
                if self._closed.is_set():
                    return
                image = cv2.imread(str(file), cv2.IMREAD_COLOR)
                if image is None:
                    self.skipped += 1
                    continue
                yield self._frame(np.asarray(image, dtype=np.uint8))
                if self.period:
                    self._closed.wait(self.period)
            if not self.loop or not files:
                return


class SyntheticSource(_Base):
    """Frames from a function of the frame number (seeded generators in ``fixtures``)."""

    def __init__(
        self,
        make: Callable[[int], npt.NDArray[np.uint8]],
        *,
        count: int | None = None,
        source_id: str = "synthetic",
    ) -> None:
        super().__init__(source_id)
        self.make = make
        self.count = count

    def frames(self) -> Iterator[Frame]:
        self.state.connected = True
        for n in itertools.count():
            if self._closed.is_set() or (self.count is not None and n >= self.count):
                return
            yield self._frame(self.make(n))


def open_source(config: CameraConfig, source_id: str = "gate") -> FrameSource:
    """Build the configured source."""
    src = config.source
    if isinstance(src, UsbSource):
        return OpenCVSource(src.index, source_id=source_id, reconnect_max_s=config.reconnect_max_s)
    if isinstance(src, UrlSource):
        return OpenCVSource(src.url, source_id=source_id, reconnect_max_s=config.reconnect_max_s)
    if isinstance(src, FileSource):
        return OpenCVSource(str(src.path), source_id=source_id, loop=src.loop, is_file=True)
    if isinstance(src, DirectorySource):
        return DirectoryFrameSource(src.path, source_id=source_id, loop=src.loop, fps=src.fps)
    raise TypeError(f"unknown camera source {src!r}")
