from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera.buffer import FrameBuffer, Overflow
from edge.camera.frame import Frame
from edge.camera.settings import CameraConfig, DirectorySource
from edge.camera.sources import DirectoryFrameSource, OpenCVSource, SyntheticSource, open_source
from edge.contracts.errors import ErrorCode


def _image(n: int) -> np.ndarray:
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, :, 1] = n * 20
    return img


def test_directory_source_reads_in_order_and_skips_bad_files(tmp_path: Path) -> None:
    for n in range(3):
        cv2.imwrite(str(tmp_path / f"f{n}.png"), _image(n))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    src = open_source(CameraConfig(source=DirectorySource(path=tmp_path)))
    frames = list(src.frames())
    assert [int(f.image[0, 0, 1]) for f in frames] == [0, 20, 40]
    assert [f.frame_id for f in frames] == [1, 2, 3]
    assert isinstance(src, DirectoryFrameSource) and src.skipped == 1


def test_video_file_source_and_loop(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for n in range(5):
        writer.write(_image(n))
    writer.release()
    assert len(list(OpenCVSource(str(path), is_file=True).frames())) == 5
    looping = OpenCVSource(str(path), is_file=True, loop=True)
    got = []
    for frame in looping.frames():
        got.append(frame)
        if len(got) == 12:
            looping.close()
    assert len(got) == 12


def test_missing_video_file_reports_camera_lost(tmp_path: Path) -> None:
    src = OpenCVSource(str(tmp_path / "nope.mp4"), is_file=True)
    assert list(src.frames()) == []
    assert src.state.last_error is ErrorCode.CAMERA_LOST


def test_unreachable_stream_keeps_retrying_and_reports(port: int) -> None:
    src = OpenCVSource(f"http://127.0.0.1:{port}/stream.mjpg", reconnect_max_s=0.2)
    done = threading.Event()

    def consume() -> None:
        for _ in src.frames():
            pass
        done.set()

    t = threading.Thread(target=consume)
    t.start()
    deadline = time.monotonic() + 10
    while src.state.losses < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    src.close()
    t.join(10)
    assert src.state.losses >= 2
    assert src.state.last_error is ErrorCode.CAMERA_LOST
    assert not src.state.connected


def test_synthetic_source_counts() -> None:
    assert len(list(SyntheticSource(_image, count=4).frames())) == 4


def _frame(n: int) -> Frame:
    return Frame(_image(n), n, time.monotonic(), "t")


def test_buffer_drop_oldest_counts_drops() -> None:
    buf = FrameBuffer(2)
    for n in range(5):
        assert buf.put(_frame(n), Overflow.DROP_OLDEST)
    assert buf.dropped == 3
    assert [buf.get(0).frame_id, buf.get(0).frame_id] == [3, 4]  # type: ignore[union-attr]
    assert buf.get(0.01) is None


def test_buffer_wait_refuses_when_full_and_never_drops() -> None:
    buf = FrameBuffer(1)
    assert buf.put(_frame(1), Overflow.WAIT)
    assert not buf.put(_frame(2), Overflow.WAIT, timeout=0.05)
    assert buf.refused == 1 and buf.dropped == 0
    threading.Timer(0.05, buf.get).start()
    assert buf.put(_frame(3), Overflow.WAIT, timeout=2)


def test_buffer_rejects_zero_capacity() -> None:
    with pytest.raises(ValueError):
        FrameBuffer(0)
