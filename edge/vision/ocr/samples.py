"""A bounded on-disk store of REVIEW and UNREADABLE crops: the review queue's and the cloud's
training-sample source.

Each sample is ``<id>.png`` (the code region) plus ``<id>.json`` (the read without the image:
status, reason, fields, text, confidence, model version, time). Ids sort by time, so the oldest
sample is the first name. When the store would exceed its byte cap the oldest samples are
deleted first and ``dropped`` (kept in ``state.json``) counts them, so the panel can say how
many were lost. Files are written to ``.part`` and renamed, so a crash never leaves half a
sample; files are private to the service user (0600, directory 0700).

API for the pipeline and the sync agent: :meth:`keep`, :meth:`ids`, :meth:`load`,
:meth:`remove` (after a confirmed upload), :attr:`dropped`, :attr:`usage_bytes`. A sample
whose image no longer matches the sha256 recorded beside it, or whose metadata does not parse,
is refused by :meth:`load` (``SAMPLE_INVALID`` in the log), never shown or uploaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.contracts.errors import ErrorCode

log = logging.getLogger(__name__)

STATE = "state.json"
MAX_SIDE = 1280  # a sample is a crop; a whole frame is shrunk to this


class SampleStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._seq = 0
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        for stale in root.glob("*.part"):
            stale.unlink(missing_ok=True)

    # --- writing ----------------------------------------------------------------------------

    def keep(self, image: npt.NDArray[np.uint8], read: Any, **extra: Any) -> str | None:
        """Store ``image`` with the read's metadata; returns the id, or None if it was dropped."""
        png = _encode(image)
        meta = asdict(read) if is_dataclass(read) and not isinstance(read, type) else dict(read)
        meta.update(extra)
        meta["stored_at"] = time.time()
        meta["png_sha256"] = hashlib.sha256(png).hexdigest()  # load() refuses a damaged file
        blob = json.dumps(meta, ensure_ascii=False, sort_keys=True).encode()
        with self._lock:
            self._seq += 1
            sid = f"{time.time_ns():020d}-{self._seq:06d}"
            size = len(png) + len(blob)
            if size > self.max_bytes:
                self._add_dropped(1)
                return None
            self._evict(self.max_bytes - size)
            self._write(f"{sid}.png", png)
            self._write(f"{sid}.json", blob)
            return sid

    def _write(self, name: str, data: bytes) -> None:
        part = self.root / f"{name}.part"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, self.root / name)

    def _evict(self, budget: int) -> None:
        ids = self.ids()
        used = self.usage_bytes
        dropped = 0
        while ids and used > budget:
            sid = ids.pop(0)
            used -= self._remove(sid)
            dropped += 1
        if dropped:
            self._add_dropped(dropped)

    def _add_dropped(self, n: int) -> None:
        state = self._state()
        state["dropped"] = int(state.get("dropped", 0)) + n
        self._write(STATE, json.dumps(state).encode())

    # --- reading ----------------------------------------------------------------------------

    def ids(self) -> list[str]:
        """Sample ids, oldest first (only complete samples: image and metadata)."""
        names = {p.stem for p in self.root.glob("*.json") if p.name != STATE}
        return sorted(n for n in names if (self.root / f"{n}.png").exists())

    def load(self, sid: str) -> tuple[bytes, dict[str, Any]]:
        """The PNG bytes and the metadata of sample ``sid``."""
        _check_id(sid)
        png = (self.root / f"{sid}.png").read_bytes()
        try:
            meta = json.loads((self.root / f"{sid}.json").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise _damaged(sid, f"metadata unreadable ({exc})") from None
        if not isinstance(meta, dict):
            raise _damaged(sid, "metadata is not an object")
        expected = meta.get("png_sha256")
        if expected is not None and hashlib.sha256(png).hexdigest() != expected:
            raise _damaged(sid, "image bytes do not match their recorded sha256")
        return png, meta

    def remove(self, sid: str) -> None:
        """Delete a sample (after the cloud confirmed the upload, or a reviewer closed it)."""
        _check_id(sid)
        with self._lock:
            self._remove(sid)

    def _remove(self, sid: str) -> int:
        freed = 0
        for ext in (".png", ".json"):
            p = self.root / f"{sid}{ext}"
            try:
                freed += p.stat().st_size
                p.unlink()
            except FileNotFoundError:
                pass
        return freed

    @property
    def dropped(self) -> int:
        return int(self._state().get("dropped", 0))

    @property
    def usage_bytes(self) -> int:
        return sum(
            p.stat().st_size
            for p in self.root.iterdir()
            if p.suffix in (".png", ".json") and p.name != STATE
        )

    def _state(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / STATE).read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}


class SampleDamagedError(ValueError):
    """A sample whose files were damaged on disk (bit rot, a torn write, someone's editor): it is
    never shown, uploaded or trained on. A ValueError, so every caller skips it as unreadable."""


def _damaged(sid: str, why: str) -> SampleDamagedError:
    log.warning(
        "%s: sample %s is damaged: %s; not loaded", ErrorCode.SAMPLE_INVALID.value, sid, why
    )
    return SampleDamagedError(f"{ErrorCode.SAMPLE_INVALID.value}: sample {sid}: {why}")


def _check_id(sid: str) -> None:
    # ids come back from the panel and the sync agent; never let one name a path
    if not sid.replace("-", "").isdigit():
        raise ValueError(f"not a sample id: {sid!r}")


def _encode(image: npt.NDArray[Any]) -> bytes:
    h, w = image.shape[:2]
    if max(h, w) > MAX_SIDE:
        s = MAX_SIDE / max(h, w)
        image = cv2.resize(image, (max(round(w * s), 1), max(round(h * s), 1)))
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("cannot encode the sample image")
    return bytes(buf.tobytes())
