"""A review queue over a directory of kept samples: ``<id>.json`` metadata + ``<id>.png`` crop.

Stands in for the OCR reader's sample store (``edge/vision/ocr/samples.py``, not landed yet) with
the same shape: a resolved sample gets ``<id>.label.json`` holding the confirmed fields, which is
what the sync agent uploads as a labeled training sample.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.contracts.errors import DockgateError, ErrorCode
from edge.panel.audit import utc_now
from edge.panel.services import ReviewItem

ITEM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


class DirectoryReviewQueue:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _meta_path(self, item_id: str) -> Path:
        if not ITEM_ID.fullmatch(item_id):
            raise DockgateError(ErrorCode.NOT_FOUND, "no such review item")
        return self.root / f"{item_id}.json"

    def pending(self, limit: int = 100) -> list[ReviewItem]:
        items = []
        for meta in sorted(self.root.glob("*.json")):
            stem = meta.name[: -len(".json")]
            if stem.endswith(".label") or (self.root / f"{stem}.label.json").exists():
                continue
            item = self.get(stem)
            if item is not None:
                items.append(item)
        items.sort(key=lambda i: i.ts)
        return items[:limit]

    def get(self, item_id: str) -> ReviewItem | None:
        try:
            raw: dict[str, Any] = json.loads(self._meta_path(item_id).read_text("utf-8"))
            return ReviewItem(
                id=item_id,
                ts=str(raw.get("ts", "")),
                status=str(raw.get("status", "REVIEW")),
                confidence=float(raw.get("confidence", 0.0)),
                text=str(raw.get("text", "")),
                fields={str(k): str(v) for k, v in dict(raw.get("fields") or {}).items()},
                reason=str(raw.get("reason", "")),
                hold_id=str(raw["hold_id"]) if raw.get("hold_id") else None,
            )
        except (OSError, ValueError, TypeError):
            return None

    def image(self, item_id: str) -> tuple[bytes, str] | None:
        self._meta_path(item_id)  # validates the id
        for suffix, mime in IMAGE_TYPES.items():
            path = self.root / f"{item_id}{suffix}"
            if path.exists():
                return path.read_bytes(), mime
        return None

    def label(self, item_id: str, fields: Mapping[str, str], actor: str) -> None:
        if self.get(item_id) is None:
            raise DockgateError(ErrorCode.NOT_FOUND, "no such review item")
        target = self.root / f"{item_id}.label.json"
        part = target.with_suffix(".part")
        part.write_text(
            json.dumps({"fields": dict(fields), "actor": actor, "ts": utc_now()}), "utf-8"
        )
        os.replace(part, target)

    def disk_usage(self) -> int:
        return sum(p.stat().st_size for p in self.root.iterdir() if p.is_file())
