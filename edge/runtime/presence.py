"""Carton presence on a free-running camera: which frames show one carton.

Without a photo-eye, the camera itself must tell when a carton is in view. The belt is mostly
empty and looks the same from frame to frame, so a tiny grayscale thumbnail of the empty belt is
learned (slowly, only from frames judged empty) and a frame whose thumbnail differs enough from it
shows a carton. Consecutive "present" frames are one carton; it is emitted when the belt is empty
again or after ``max_frames`` (a carton stopped in view must not block the line). Cheap on
purpose: a 64x36 thumbnail costs well under a millisecond per 1280x720 frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from edge.camera.frame import Frame

THUMB = (64, 36)


@dataclass
class PresenceSegmenter:
    """Feed frames in order; get back the frames of each carton once it has passed."""

    threshold: float = 18.0  # mean absolute thumbnail difference (0..255) that means "carton"
    min_frames: int = 1
    max_frames: int = 12
    keep: int = 3  # frames handed to the reader per carton (spread over its passage)
    learn_rate: float = 0.05
    relearn_after: int = 5  # this many max-length "cartons" in a row = the scene changed
    _background: npt.NDArray[np.float32] | None = None
    _current: list[Frame] = field(default_factory=list)
    _scores: list[float] = field(default_factory=list)
    _full_runs: int = 0

    def score(self, image: npt.NDArray[np.uint8]) -> float:
        thumb = _thumb(image)
        if self._background is None:
            self._background = thumb
            return 0.0
        return float(np.mean(np.abs(thumb - self._background)))

    def feed(self, frame: Frame) -> list[Frame] | None:
        """Returns the chosen frames of a carton that just left the view, else ``None``."""
        s = self.score(frame.image)
        present = s >= self.threshold
        if not present:
            # learn the empty belt slowly (lighting drifts over a shift)
            thumb = _thumb(frame.image)
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
            return self._close()
        return None

    def flush(self) -> list[Frame] | None:
        """End of stream: the carton still in view, if any."""
        return self._close()

    def _close(self) -> list[Frame] | None:
        frames, self._current, self._scores = self._current, [], []
        if len(frames) < self.min_frames:
            return None
        return spread(frames, self.keep)


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
