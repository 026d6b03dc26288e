"""The reader's sample store, written behind the inference thread.

The reader keeps every REVIEW/UNREADABLE crop (most cartons while the OCR is weak): a PNG
encode and two fsyncs, 30 to 50 ms, inside the inference stage, which is the pipeline's
bottleneck. :class:`BackgroundSampleStore` takes the crop and returns at once; one writer thread
stores it through the ordinary :class:`SampleStore` (same directory, same byte cap, same
atomic files). The queue is bounded: when the disk cannot keep up a sample is dropped and
counted in the store's ``dropped`` figure, never the line slowed down. The panel and the sync
agent use their own plain store on the same directory.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.vision.ocr.samples import SampleStore

log = logging.getLogger(__name__)


class BackgroundSampleStore(SampleStore):
    def __init__(self, root: Path, max_bytes: int, pending: int = 32) -> None:
        super().__init__(root, max_bytes)
        self._q: queue.Queue[tuple[npt.NDArray[np.uint8], Any, dict[str, Any]] | None] = (
            queue.Queue(pending)
        )
        self.lost = 0  # dropped because the writer fell behind (also added to ``dropped``)
        self._thread = threading.Thread(target=self._run, name="sample-writer", daemon=True)
        self._thread.start()

    def keep(self, image: npt.NDArray[np.uint8], read: Any, **extra: Any) -> str | None:
        """Queue the sample; returns ``None`` (its id is not known yet)."""
        try:
            self._q.put_nowait((image, read, extra))
        except queue.Full:
            self.lost += 1
            with self._lock:
                self._add_dropped(1)
        return None

    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is None:
                    return
                image, read, extra = item
                try:
                    super().keep(image, read, **extra)
                except Exception:
                    log.exception("sample not stored")
            finally:
                self._q.task_done()

    def flush(self) -> None:
        """Wait until every queued sample is on disk."""
        self._q.join()

    def close(self) -> None:
        """Store what is queued, then stop the writer."""
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join(timeout=30)
