"""The sync wire contract between an edge node and the cloud (both sides import this module).

``POST /v1/ingest`` takes a :class:`SyncBatch` and answers a :class:`SyncResult`. The request is
authenticated by a device request signature (``Authorization: Dockgate-Sig <JWS>``, see
``edge.contracts.envelope``). Delivery is at-least-once with idempotent apply keyed by
(device id, sequence): the edge may resend anything; it deletes an outbox row only once a
``SyncResult.hwm`` at or above its sequence came back.

``GET /v1/freezes?since=CURSOR&wait=SECONDS`` is a long poll: it answers as soon as a QA freeze
of the device's organisation made by another device is newer than ``CURSOR``, or after ``wait``
seconds with an empty list.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 1000
INGEST_PATH = "/v1/ingest"
FREEZES_PATH = "/v1/freezes"
AUTH_SCHEME = "Dockgate-Sig"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyncBatch(_Wire):
    """Signed envelopes of one device, ascending by sequence, plus a signed chain checkpoint."""

    device_id: str = Field(..., min_length=2, max_length=63, description="sending device")
    envelopes: list[str] = Field(..., max_length=MAX_BATCH, description="compact JWS envelopes")
    checkpoint: str | None = Field(
        None, description="compact JWS checkpoint of the device's chain head (seq, head hash)"
    )


class Rejection(_Wire):
    """One envelope the cloud refused (and quarantined with an audit entry)."""

    seq: int | None = Field(None, description="sequence, when it could be read")
    event_id: str | None = Field(None, description="event id, when it could be read")
    code: str = Field(..., description="stable error code")
    message: str = Field(..., description="one sentence for the operator")


class SyncResult(_Wire):
    """The cloud's answer for one device."""

    device_id: str
    hwm: int = Field(..., ge=0, description="highest contiguous sequence the cloud holds")
    head_hash: str = Field(..., description="hash of the event at hwm (genesis when 0)")
    accepted: int = Field(0, ge=0, description="events stored by this request")
    duplicates: int = Field(0, ge=0, description="events the cloud already held, unchanged")
    resend_from: int | None = Field(None, description="first missing sequence, on a gap")
    rejected: list[Rejection] = Field(default_factory=list)
    conflicts: list[Rejection] = Field(
        default_factory=list, description="stored but flagged for QA (FROZEN_CONFLICT)"
    )


class FreezeNotice(_Wire):
    """A QA freeze made at one device, to be applied by every other device of the organisation."""

    cursor: int = Field(..., ge=1, description="feed position; ask for newer with since=")
    sku: str
    lot: str
    reason: str = ""
    origin_device: str
    event_id: str
    frozen_at: str = Field(..., description="device time of the freeze event (informative)")


class FreezeFeed(_Wire):
    cursor: int = Field(..., ge=0, description="highest cursor included (or the one given)")
    freezes: list[FreezeNotice] = Field(default_factory=list)
