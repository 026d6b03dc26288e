"""The review queue over the OCR reader's sample store (``edge/vision/ocr/samples.py``).

Pending items are the kept REVIEW / UNREADABLE samples that carry no ``label`` yet. Resolving
one keeps it again with the confirmed fields under ``label`` (who and when beside it) and removes
the unlabeled copy, through the store's own API (``keep`` / ``load`` / ``remove``), so the sync
agent finds labeled samples in the same place, bounded by the same byte cap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import cv2
import numpy as np

from edge.contracts.errors import DockgateError, ErrorCode
from edge.panel.audit import utc_now
from edge.panel.services import ReviewItem

SAMPLE_ID = re.compile(r"^[0-9][0-9-]{0,63}$")
REVIEWABLE = ("REVIEW", "UNREADABLE")
FIELDS = ("gtin", "lot", "expiry", "prod_date", "sscc")


class Samples(Protocol):
    """What the panel uses of ``edge.vision.ocr.samples.SampleStore``."""

    def keep(self, image: Any, read: Any, **extra: Any) -> str | None: ...
    def ids(self) -> list[str]: ...
    def load(self, sid: str) -> tuple[bytes, dict[str, Any]]: ...
    def remove(self, sid: str) -> None: ...
    @property
    def usage_bytes(self) -> int: ...


class SampleReviewQueue:
    def __init__(self, store: Samples) -> None:
        self.store = store

    def _load(self, item_id: str) -> tuple[bytes, dict[str, Any]] | None:
        if not SAMPLE_ID.fullmatch(item_id):
            return None
        try:
            return self.store.load(item_id)
        except (OSError, ValueError):
            return None

    def pending(self, limit: int = 100) -> list[ReviewItem]:
        items = []
        for sid in self.store.ids():  # oldest first
            item = self.get(sid)
            if item is not None:
                items.append(item)
                if len(items) >= limit:
                    break
        return items

    def get(self, item_id: str) -> ReviewItem | None:
        found = self._load(item_id)
        if found is None:
            return None
        meta = found[1]
        if meta.get("label") or meta.get("status") not in REVIEWABLE:
            return None
        hold = meta.get("hold_id") or meta.get("hold")
        return ReviewItem(
            id=item_id,
            ts=_ts(meta.get("stored_at")),
            status=str(meta["status"]),
            confidence=float(meta.get("confidence") or 0.0),
            text=str(meta.get("text") or ""),
            fields={k: str(meta[k]) for k in FIELDS if meta.get(k)},
            reason=str(meta.get("reason") or "").split(":")[0],
            hold_id=str(hold) if hold else None,
        )

    def image(self, item_id: str) -> tuple[bytes, str] | None:
        found = self._load(item_id)
        return (found[0], "image/png") if found is not None else None

    def label(self, item_id: str, fields: Mapping[str, str], actor: str) -> None:
        found = self._load(item_id)
        if found is None:
            raise DockgateError(ErrorCode.NOT_FOUND, "no such review item")
        png, meta = found
        image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DockgateError(ErrorCode.IMAGE_INVALID, "the kept sample image is unreadable")
        meta.pop("stored_at", None)
        labeled = {**meta, "label": dict(fields), "labeled_by": actor, "labeled_at": utc_now()}
        self.store.keep(image, labeled, reviewed_from=item_id)
        self.store.remove(item_id)

    def disk_usage(self) -> int:
        return int(self.store.usage_bytes)


def _ts(stored_at: object) -> str:
    if isinstance(stored_at, int | float):
        return datetime.fromtimestamp(stored_at, UTC).isoformat(timespec="seconds")
    return ""
