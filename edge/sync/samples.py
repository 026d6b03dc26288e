"""Upload of low-confidence OCR samples to the cloud (``POST /v1/samples``), for training and
the cloud's sample inbox.

Source: the reader's bounded sample store (``edge.vision.ocr.samples.SampleStore``): REVIEW and
UNREADABLE crops with their read, written by the pipeline and relabelled by the panel's review
queue. The store's byte cap is the disk bound; this agent never deletes from it (the review
queue still needs the samples) and keeps only a small state file.

- **Which**: samples whose read confidence is below ``sync.samples_threshold`` (0.85), oldest
  first. A relabelled sample is a new sample id (with the same image bytes).
- **Resumable**: sample ids sort by time, so the agent's cursor is the last id the cloud
  confirmed, saved (atomically) after each confirmation. After a restart or a network cut it
  carries on after the cursor; a sample whose answer was lost is sent again and the cloud answers
  it as a duplicate (unique per device and sample id). A sample is a few KiB to a few hundred
  KiB, so one request carries it whole: the unit of resumption is the sample.
- **Stored once**: the image is addressed by its SHA-256; before sending a round the agent asks
  which hashes the cloud holds (``/v1/samples/have``) and sends only the metadata for those.
- **Bandwidth**: uploads are paced so that the bytes on the wire average at most
  ``sync.samples_max_kib_s``.
- A sample the cloud refuses for good (``SAMPLE_INVALID``) is skipped and counted, so one bad
  sample never blocks the rest; network and server trouble back off and retry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.samples import (
    MAX_METADATA_BYTES,
    SAMPLES_HAVE_PATH,
    SAMPLES_PATH,
    HaveRequest,
    HaveResponse,
    SampleReceipt,
    SampleUpload,
)
from edge.sync.agent import Backoff
from edge.sync.config import SyncConfig

log = logging.getLogger("dockgate.sync.samples")
STATE_FILE = "samples-upload.json"


class SampleSource(Protocol):
    """What the agent reads of the sample store."""

    def ids(self) -> list[str]: ...
    def load(self, sid: str) -> tuple[bytes, dict[str, Any]]: ...


class Poster(Protocol):
    """``edge.sync.client.CloudClient``: a device-signed POST."""

    def post(self, path: str, body: bytes, timeout: float | None = None) -> bytes: ...


@dataclass
class UploadState:
    cursor: str = ""  # the last sample id the cloud confirmed (or skipped for good)
    uploaded: int = 0
    bytes_sent: int = 0
    deduplicated: int = 0  # sent without their image: the cloud already held the bytes
    skipped: int = 0  # at or above the confidence threshold
    refused: int = 0  # SAMPLE_INVALID from the cloud, or too large metadata: skipped for good
    last_error: str | None = None


@dataclass
class Pacer:
    """Average-rate limit: after ``n`` bytes the next send waits until they have 'drained' at
    ``rate`` bytes/s. One sample may go at once whatever its size (no deadlock on big ones)."""

    rate: float
    clock: Callable[[], float] = time.monotonic
    _free_at: float = 0.0

    def wait_s(self) -> float:
        return max(0.0, self._free_at - self.clock())

    def sent(self, n: int) -> None:
        self._free_at = max(self._free_at, self.clock()) + n / self.rate


@dataclass
class RoundResult:
    uploaded: int = 0
    deduplicated: int = 0
    skipped: int = 0
    refused: int = 0
    bytes_sent: int = 0
    more: bool = False  # a full batch was looked at: more may be waiting


@dataclass
class SampleUploader:
    store: SampleSource
    client: Poster
    device_id: str
    state_path: Path
    config: SyncConfig
    model_version: str | None = None
    clock: Callable[[], float] = time.monotonic
    pacer: Pacer = field(init=False)
    state: UploadState = field(init=False)

    def __post_init__(self) -> None:
        self.pacer = Pacer(self.config.samples_max_kib_s * 1024, self.clock)
        self.state = self._load_state()

    # state --------------------------------------------------------------------------------
    def _load_state(self) -> UploadState:
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
            known = UploadState.__dataclass_fields__
            return UploadState(**{k: v for k, v in raw.items() if k in known})
        except (OSError, ValueError, TypeError):
            return UploadState()

    def _save_state(self) -> None:
        tmp = self.state_path.with_suffix(".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(self.state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_path)

    def pending(self) -> list[str]:
        """Sample ids after the cursor, oldest first (not yet filtered by confidence)."""
        return [sid for sid in self.store.ids() if sid > self.state.cursor]

    # one round ----------------------------------------------------------------------------
    def upload_round(self, stop: threading.Event | None = None) -> RoundResult:
        """Look at up to ``samples_batch`` samples after the cursor and send the eligible ones.
        Raises DockgateError on a network or server failure (the cursor stays put)."""
        out = RoundResult()
        ids = self.pending()[: self.config.samples_batch]
        out.more = len(ids) == self.config.samples_batch
        batch: list[tuple[str, bytes, dict[str, Any], str]] = []
        for sid in ids:
            try:
                data, meta = self.store.load(sid)
            except (OSError, ValueError):
                continue  # evicted by the store's byte cap since it was listed
            batch.append((sid, data, meta, hashlib.sha256(data).hexdigest()))
        eligible = {sid for sid, _, meta, _ in batch if self._eligible(meta)}
        have = self._have([h for sid, _, _, h in batch if sid in eligible])
        for sid, data, meta, sha in batch:
            if stop is not None and stop.is_set():
                break
            if sid not in eligible:
                out.skipped += 1
                self._advance(sid, skipped=1)
                continue
            body = self._body(sid, data, meta, sha, with_data=sha not in have)
            if body is None:
                out.refused += 1
                self._advance(sid, refused=1)
                continue
            wait = self.pacer.wait_s()
            if wait > 0 and stop is not None and stop.wait(wait):
                break
            if wait > 0 and stop is None:
                time.sleep(wait)
            self.pacer.sent(len(body))
            out.bytes_sent += len(body)
            try:
                receipt = SampleReceipt.model_validate_json(self.client.post(SAMPLES_PATH, body))
            except DockgateError as exc:
                if exc.code is not ErrorCode.SAMPLE_INVALID:
                    raise
                log.error("sample %s refused by the cloud, skipped: %s", sid, exc)
                out.refused += 1
                self._advance(sid, refused=1, error=str(exc))
                continue
            dedup = sha in have
            have.add(sha)  # a later sample with the same bytes in this round goes without them
            out.uploaded += 1
            out.deduplicated += dedup
            self._advance(sid, uploaded=1, deduplicated=int(dedup), bytes_sent=len(body))
            log.debug("sample %s -> cloud #%d (duplicate %s)", sid, receipt.id, receipt.duplicate)
        return out

    def _eligible(self, meta: dict[str, Any]) -> bool:
        confidence = meta.get("confidence")
        if not isinstance(confidence, int | float):
            return True  # no confidence (an ERROR read): worth a look
        return float(confidence) < self.config.samples_threshold

    def _have(self, hashes: list[str]) -> set[str]:
        if not hashes:
            return set()
        body = HaveRequest(device_id=self.device_id, sha256=hashes).model_dump_json().encode()
        return set(HaveResponse.model_validate_json(self.client.post(SAMPLES_HAVE_PATH, body)).have)

    def _body(
        self, sid: str, data: bytes, meta: dict[str, Any], sha: str, *, with_data: bool
    ) -> bytes | None:
        if len(json.dumps(meta, ensure_ascii=False).encode()) > MAX_METADATA_BYTES:
            log.error("sample %s: metadata over %d bytes, skipped", sid, MAX_METADATA_BYTES)
            return None
        confidence = meta.get("confidence")
        stored_at = meta.get("stored_at")
        up = SampleUpload(
            device_id=self.device_id,
            sample_id=sid,
            sha256=sha,
            size=len(data),
            content_type="image/jpeg" if data.startswith(b"\xff\xd8\xff") else "image/png",
            data=base64.b64encode(data).decode() if with_data else None,
            status=str(meta["status"])[:16] if meta.get("status") else None,
            confidence=min(1.0, max(0.0, float(confidence)))
            if isinstance(confidence, int | float)
            else None,
            model_version=self.model_version,
            captured_at=float(stored_at) if isinstance(stored_at, int | float) else None,
            metadata=meta,
        )
        return up.model_dump_json().encode()

    def _advance(self, sid: str, error: str | None = None, **counts: int) -> None:
        self.state.cursor = sid
        for key, n in counts.items():
            setattr(self.state, key, getattr(self.state, key) + n)
        if error is not None:
            self.state.last_error = error[:300]
        self._save_state()

    # the loop -----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        backoff = Backoff(self.config.backoff_base_s, self.config.backoff_cap_s)
        while not stop.is_set():
            try:
                result = self.upload_round(stop)
                backoff.reset()
                delay = 0.0 if result.more else self.config.interval_s
            except DockgateError as exc:
                log.warning("sample upload: %s", exc)
                self.state.last_error = str(exc)[:300]
                delay = backoff.next_delay()
            stop.wait(delay)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="sync-samples", daemon=True)
        thread.start()
        return thread
