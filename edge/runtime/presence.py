"""Carton presence on a free-running camera: which frames show one carton.

Without a photo-eye, the camera itself must tell when a carton is in view. The belt is mostly
empty and looks the same from frame to frame, so a tiny grayscale thumbnail of the empty belt is
learned (slowly, only from frames judged empty) and a frame whose thumbnail differs enough from it
shows a carton. Consecutive "present" frames are one carton; it is emitted when the belt is empty
again or after ``max_frames`` (a carton stopped in view must not block the line). Cheap on
purpose: a 64x36 thumbnail costs well under a millisecond per 1280x720 frame.

Early emission (``early``, on by default): waiting for the carton to leave the view costs the
whole second half of its passage in latency (at 2 cartons/s and 12 frames per carton, 150 to
250 ms). The segmenter learns how many frames a carton stays in view (a running average of the
passages it saw end) and hands over the ``keep`` frames up to the middle of the expected passage
the moment the middle frame is in, that one to be read first (a frame after the middle would
only add a frame interval of waiting: at 2 cartons/s the reader seldom has time for more than
one frame); the rest of that passage is then only watched for its end. The first carton, and any
carton shorter than expected, is emitted when it leaves, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.frame import Frame

THUMB = (64, 36)


class Passage(list[Frame]):
    """The frames of one carton handed to the reader, in capture order; ``prefer`` is the index
    of the frame to read first (the carton most fully in view), the others are read nearest to
    it first while the latency budget allows."""

    def __init__(self, frames: list[Frame], prefer: int | None = None) -> None:
        super().__init__(frames)
        self.prefer = len(frames) // 2 if prefer is None else prefer


@dataclass
class PresenceSegmenter:
    """Feed frames in order; get back the frames of each carton once it has passed."""

    threshold: float = 18.0  # mean absolute thumbnail difference (0..255) that means "carton"
    min_frames: int = 1
    max_frames: int = 12
    keep: int = 3  # frames handed to the reader per carton (spread over its passage)
    learn_rate: float = 0.05
    relearn_after: int = 5  # this many max-length "cartons" in a row = the scene changed
    early: bool = True  # emit once the middle frame is in (see the module doc)
    _background: npt.NDArray[np.float32] | None = None
    _expected: float | None = None  # running average of a carton's frames in view
    _emitted: bool = False  # the current carton was emitted early; wait for its end
    _current: list[Frame] = field(default_factory=list)
    _scores: list[float] = field(default_factory=list)
    _full_runs: int = 0

    def score(self, image: npt.NDArray[np.uint8]) -> float:
        return self._score(_thumb(image))

    def _score(self, thumb: npt.NDArray[np.float32]) -> float:
        if self._background is None:
            self._background = thumb
            return 0.0
        return float(np.mean(np.abs(thumb - self._background)))

    def feed(self, frame: Frame) -> Passage | None:
        """Returns the chosen frames of a carton (as soon as they are in, or when it left the
        view), else ``None``."""
        thumb = _thumb(frame.image)  # once per frame: scored, and learnt if the belt is empty
        s = self._score(thumb)
        present = s >= self.threshold
        if not present:
            # learn the empty belt slowly (lighting drifts over a shift)
            assert self._background is not None
            self._background += self.learn_rate * (thumb - self._background)
            self._full_runs = 0
            return self._close()
        self._current.append(frame)
        self._scores.append(s)
        if len(self._current) >= self.max_frames:
            self._full_runs += 1
            if self._full_runs >= self.relearn_after:
                # lights switched or the camera moved: what we see now is the new empty belt
                self._background = _thumb(frame.image)
                self._full_runs = 0
            return self._close(ended=False)
        if self.early and not self._emitted and self._expected is not None:
            chosen = leading(round(self._expected), self.keep)
            if len(self._current) > chosen[-1]:
                self._emitted = True
                return Passage([self._current[i] for i in chosen], prefer=len(chosen) - 1)
        return None

    def flush(self) -> Passage | None:
        """End of stream: the carton still in view, if any."""
        return self._close(ended=False)

    def _close(self, ended: bool = True) -> Passage | None:
        frames, self._current, self._scores = self._current, [], []
        emitted, self._emitted = self._emitted, False
        if ended and len(frames) >= self.min_frames:
            n = float(len(frames))
            self._expected = (
                n if self._expected is None else self._expected + 0.2 * (n - self._expected)
            )
        if emitted or len(frames) < self.min_frames:
            return None
        return Passage(spread(frames, self.keep))


def leading(length: int, keep: int) -> list[int]:
    """Indices of the ``keep`` frames of a passage of ``length`` frames that end with its
    middle one, in order."""
    centre = (max(1, length) - 1) // 2
    return list(range(max(0, centre - keep + 1), centre + 1))


def spread(frames: list[Frame], keep: int) -> list[Frame]:
    """Up to ``keep`` frames evenly spread over the carton's passage (middle ones first matter
    most: the carton is fully in view there)."""
    if len(frames) <= keep:
        return frames
    idx = np.linspace(0, len(frames) - 1, keep + 2)[1:-1].round().astype(int)
    return [frames[i] for i in idx]


def _thumb(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, THUMB, interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.float32)
