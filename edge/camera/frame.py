"""A camera frame as an immutable value passed between stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One captured image.

    ``ts`` is ``time.monotonic()`` at capture (for latency; never for ordering across restarts),
    ``trigger_id`` names the photo-eye pulse or presence event that caused the capture, if any.
    """

    image: npt.NDArray[np.uint8]
    frame_id: int
    ts: float
    source_id: str
    trigger_id: str | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.image.shape)
