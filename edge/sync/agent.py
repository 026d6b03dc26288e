"""The edge sync agent: push the outbox, resume from the cloud's high-water mark, apply freezes.

Delivery is at-least-once with idempotent apply in the cloud (keyed by device and sequence), so
the agent may resend anything. It acknowledges (deletes) outbox rows only up to the ``hwm`` the
cloud answered, which the cloud gives only after its transaction committed. Failures back off
exponentially with full jitter; every failure is kept as a code and a sentence in the state file.

Freeze propagation is a long poll (``GET /v1/freezes``): the cloud answers as soon as another
device of the organisation has synced a QA freeze, and the agent books it into the local ledger
with ``actor = cloud:<origin device>`` and an event id derived from the origin event and this
device, so a re-delivered notice is a no-op.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.event import Event
from edge.contracts.sync import FreezeNotice, SyncResult
from edge.sync.client import CloudClient
from edge.sync.config import SyncConfig
from edge.sync.state import StateFile, SyncState, now_iso, record_error
from edge.trust.signer import DeviceSigner

log = logging.getLogger("dockgate.sync")
FREEZE_NAMESPACE = uuid.UUID("6c1f3b52-5a0e-4c4e-9d55-0f6c2f3d5050")


class Outbox(Protocol):
    """What the agent needs from the ledger (``edge.ledger.Ledger`` provides all of it)."""

    def outbox_pending(self, limit: int = 500) -> list[tuple[int, str, str]]: ...
    def outbox_ack(self, up_to_seq: int) -> int: ...
    def head(self) -> tuple[int, str]: ...
    def events(self, after_seq: int = 0, limit: int = 1000) -> list[Event]: ...
    def sign_pending(self, signer: Any, batch: int = 500) -> int: ...

    def freeze(
        self, sku: str, lot: str, *, reason: str, actor: str, event_id: str | None = None
    ) -> Any: ...


class Backoff:
    """Exponential backoff with full jitter (delay uniform in [0, min(cap, base·2^n)])."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base, self.cap, self.failures = base, cap, 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self.failures, 30))
        self.failures += 1
        return self._rng.uniform(ceiling / 10, ceiling)

    def reset(self) -> None:
        self.failures = 0


@dataclass
class PushOutcome:
    sent: int
    acked_through: int
    result: SyncResult | None


class SyncAgent:
    def __init__(
        self,
        ledger: Outbox,
        client: CloudClient,
        signer: DeviceSigner,
        state_file: StateFile,
        config: SyncConfig,
        rng: random.Random | None = None,
    ) -> None:
        self.ledger, self.client, self.signer = ledger, client, signer
        self.state_file, self.config = state_file, config
        self.state: SyncState = state_file.load()
        self.push_backoff = Backoff(config.backoff_base_s, config.backoff_cap_s, rng)
        self.poll_backoff = Backoff(config.backoff_base_s, config.backoff_cap_s, rng)
        self._lock = threading.Lock()  # state is shared by the push and freeze threads

    # one step each, used by the loops and by tests --------------------------------------
    def push_once(self) -> PushOutcome:
        """Send up to ``pipeline`` batches at once; raises DockgateError on a failure.

        Batches in flight together let the cloud verify one while it chains the other. If the
        later one reaches the device lock first it is answered with a gap and simply stays in
        the outbox for the next round: acknowledgement follows the cloud's high-water mark only.
        """
        self.ledger.sign_pending(self.signer)
        size = self.config.batch_size
        pending = self.ledger.outbox_pending(size * self.config.pipeline)
        if not pending:
            return PushOutcome(0, self.state.cloud_hwm, None)
        head_seq, head_hash = self.ledger.head()
        checkpoint = self.signer.sign_checkpoint(head_seq, head_hash, now_iso())
        chunks = [
            [env for _, _, env in pending[i : i + size]] for i in range(0, len(pending), size)
        ]
        outcomes = self._push_chunks(chunks, checkpoint)
        results = [o for o in outcomes if isinstance(o, SyncResult)]
        errors = [o for o in outcomes if isinstance(o, DockgateError)]
        if not results:
            raise errors[0]
        result = max(results, key=lambda r: r.hwm)
        rejected = [x for r in results for x in r.rejected]
        result = result.model_copy(update={"rejected": rejected})
        if result.resend_from is not None and result.resend_from < pending[0][0]:
            # The cloud lost what we had acknowledged (restored from a backup): heal from the
            # log, which is never deleted, re-signing the events it is missing.
            events = self.ledger.events(result.resend_from - 1, self.config.batch_size)
            envs = [self.signer.sign_event(e.to_dict()) for e in events]
            result = self.client.push(envs, checkpoint)
        self._after_push(result)
        if errors:
            raise errors[0]
        return PushOutcome(len(pending), result.hwm, result)

    def _push_chunks(
        self, chunks: list[list[str]], checkpoint: str
    ) -> list[SyncResult | DockgateError]:
        def one(chunk: list[str]) -> SyncResult | DockgateError:
            try:
                return self.client.push(chunk, checkpoint)
            except DockgateError as exc:
                return exc

        if len(chunks) == 1:
            return [one(chunks[0])]
        with ThreadPoolExecutor(len(chunks)) as pool:
            return list(pool.map(one, chunks))

    def _after_push(self, result: SyncResult) -> None:
        if result.hwm > 0:
            self._ack(result)
        with self._lock:
            self.state.cloud_hwm = result.hwm
            self.state.last_attempt = now_iso()
            self.state.conflicts_reported += len(result.conflicts)
            if result.rejected:
                first = result.rejected[0]
                raise DockgateError(
                    ErrorCode.SYNC_REJECTED,
                    f"cloud refused seq {first.seq}: {first.code} {first.message}",
                )
            self.state.last_success = now_iso()
            self.state.consecutive_failures = 0
            self.state.last_error_code = self.state.last_error_message = None
            self.state_file.save(self.state)

    def _ack(self, result: SyncResult) -> None:
        """Drop outbox rows the cloud holds, but only if what it holds is *our* chain.

        A cloud that answers a high-water mark whose hash differs from our event at that
        sequence holds another history for this device id (a wiped and re-enrolled node, a
        clone): acknowledging would delete events the cloud never got.
        """
        ours = self.ledger.events(result.hwm - 1, 1)
        if not ours or ours[0].seq != result.hwm or ours[0].hash != result.head_hash:
            raise DockgateError(
                ErrorCode.SYNC_REJECTED,
                f"{ErrorCode.CHAIN_FORK.value}: the cloud holds a different chain for "
                f"{self.signer.device_id} at seq {result.hwm}; nothing acknowledged",
            )
        self.ledger.outbox_ack(result.hwm)

    def drain(self, max_batches: int = 1_000_000) -> int:
        """Push until the outbox is empty; returns events sent. Raises on the first failure."""
        sent = 0
        for _ in range(max_batches):
            outcome = self.push_once()
            if outcome.sent == 0:
                break
            sent += outcome.sent
            if (
                outcome.result is not None
                and outcome.result.accepted == 0
                and not (outcome.result.duplicates)
            ):
                break  # the cloud made no progress (a gap it will ask again for)
        return sent

    def poll_freezes_once(self, wait: float | None = None) -> int:
        """One long poll; books every new fleet freeze into the ledger. Returns how many."""
        feed = self.client.freezes(self.state.freeze_cursor, wait or self.config.freeze_wait_s)
        applied = 0
        for notice in feed.freezes:
            self._apply_freeze(notice)
            applied += 1
        with self._lock:
            self.state.freeze_cursor = max(self.state.freeze_cursor, feed.cursor)
            self.state.freezes_applied += applied
            self.state_file.save(self.state)
        return applied

    def _apply_freeze(self, notice: FreezeNotice) -> None:
        event_id = str(uuid.uuid5(FREEZE_NAMESPACE, f"{notice.event_id}/{self.signer.device_id}"))
        reason = f"fleet freeze from {notice.origin_device}" + (
            f": {notice.reason}" if notice.reason else ""
        )
        try:
            self.ledger.freeze(
                notice.sku,
                notice.lot,
                reason=reason[:200],
                actor=f"cloud:{notice.origin_device}",
                event_id=event_id,
            )
        except DockgateError as exc:
            if exc.code in (ErrorCode.STORAGE_FULL, ErrorCode.LEDGER_WRITE_FAILED):
                raise  # retried with the same cursor
            # A notice this ledger cannot book (bad codes) must not block the feed: say so.
            log.error("fleet freeze %s/%s not booked: %s", notice.sku, notice.lot, exc)
            with self._lock:
                record_error(self.state, exc)

    # the loops -------------------------------------------------------------------------
    def run_push(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                outcome = self.push_once()
                self.push_backoff.reset()
                more = outcome.sent >= self.config.batch_size
                delay = 0.0 if more else self.config.interval_s
            except DockgateError as exc:
                self._failed(exc)
                delay = self.push_backoff.next_delay()
            stop.wait(delay)

    def run_freezes(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll_freezes_once()
                self.poll_backoff.reset()
                delay = 0.0
            except DockgateError as exc:
                self._failed(exc)
                delay = self.poll_backoff.next_delay()
            stop.wait(delay)

    def _failed(self, exc: DockgateError) -> None:
        log.warning("sync: %s", exc)
        with self._lock:
            record_error(self.state, exc)
            self.state.last_attempt = now_iso()
            self.state_file.save(self.state)

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self.run_push, args=(stop,), name="sync-push", daemon=True),
            threading.Thread(
                target=self.run_freezes, args=(stop,), name="sync-freezes", daemon=True
            ),
        ]
        for t in threads:
            t.start()
        return threads
