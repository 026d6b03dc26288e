"""The cloud's tables (SQLAlchemy 2). Schema changes go through Alembic, never ``create_all``."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from edge.contracts.event import GENESIS_HASH


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class Device(Base):
    """An enrolled device and its chain state; its row is the per-device lock of ingest."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    site: Mapped[str] = mapped_column(String(63), index=True)
    org: Mapped[str] = mapped_column(String(63), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | revoked
    enrolled_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_through_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    hwm_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    head_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
    ckpt_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    ckpt_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    forked: Mapped[bool] = mapped_column(default=False)


class DeviceCert(Base):
    __tablename__ = "device_certs"
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(63), index=True)
    cert_pem: Mapped[str] = mapped_column(Text)
    not_after: Mapped[dt.datetime] = mapped_column()
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EnrollmentToken(Base):
    """One-time enrollment token; only its SHA-256 is stored."""

    __tablename__ = "enrollment_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org: Mapped[str] = mapped_column(String(63))
    site: Mapped[str] = mapped_column(String(63))
    device_id: Mapped[str | None] = mapped_column(String(63), default=None)
    expires_at: Mapped[dt.datetime] = mapped_column()
    used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    used_by: Mapped[str | None] = mapped_column(String(63), default=None)
    created_by: Mapped[str] = mapped_column(String(63))


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("device_id", "seq", name="uq_events_device_seq"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(63))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(80))
    ts: Mapped[str] = mapped_column(String(40))
    hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(128), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column()
    envelope: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Quarantine(Base):
    """Everything refused at ingest, kept with its reason: nothing is dropped silently."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    device_id: Mapped[str | None] = mapped_column(String(63), index=True, default=None)
    seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    event_id: Mapped[str | None] = mapped_column(String(64), default=None)
    code: Mapped[str] = mapped_column(String(40), index=True)
    reason: Mapped[str] = mapped_column(Text)
    envelope: Mapped[str] = mapped_column(Text)


class Audit(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    code: Mapped[str | None] = mapped_column(String(40), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Conflict(Base):
    """Something QA must see: a chain fork or a pick of a batch frozen elsewhere."""

    __tablename__ = "conflicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    code: Mapped[str] = mapped_column(String(40), index=True)
    device_id: Mapped[str] = mapped_column(String(63))
    seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    event_id: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    resolved_by: Mapped[str | None] = mapped_column(String(63), default=None)


class Freeze(Base):
    """QA freezes, fleet-wide per organisation; the id is the long-poll cursor."""

    __tablename__ = "freezes"
    __table_args__ = (Index("ix_freezes_org_sku_lot", "org", "sku", "lot"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(63))
    sku: Mapped[str] = mapped_column(String(64))
    lot: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    origin_device: Mapped[str] = mapped_column(String(63))
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    origin_seq: Mapped[int] = mapped_column(BigInteger)
    frozen_at: Mapped[str] = mapped_column(String(40))
    # each org device's high-water mark when the cloud learnt of the freeze: a later pick by
    # that device (higher seq) may not have known of it, so it is a FROZEN_CONFLICT
    frontier: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Stock(Base):
    """Fleet stock, projected from events; each location has exactly one writer (its device)."""

    __tablename__ = "stock"
    device_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    location: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    lot: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(63), index=True)
    qty: Mapped[int] = mapped_column(BigInteger, default=0)


class User(Base):
    __tablename__ = "users"
    username: Mapped[str] = mapped_column(String(63), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # viewer | operator | qa | admin
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(default=None)


class SessionRow(Base):
    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(63), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()


class RequestNonce(Base):
    """Nonces of device request signatures seen within the skew window (replay defence)."""

    __tablename__ = "request_nonces"
    device_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


# -- OTA model releases and rollouts (cloud/rollouts) -------------------------------------------


class OtaRelease(Base):
    """A signed model release found in the TUF repository the cloud serves (custom metadata)."""

    __tablename__ = "ota_releases"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_ota_releases_name_version"),)
    target: Mapped[str] = mapped_column(String(300), primary_key=True)
    name: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(BigInteger)
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)  # signature, metrics, min version
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RolloutRow(Base):
    """One rollout of a model name from version A to B; ``spec`` is a ``RolloutSpec``."""

    __tablename__ = "rollouts"
    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    model: Mapped[str] = mapped_column(String(40), index=True)
    from_version: Mapped[str] = mapped_column(String(64))
    to_version: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column()
    state: Mapped[str] = mapped_column(String(24), index=True)
    stage_index: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(80))
    start_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    stage_started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    ended_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(Text, default="")


class RolloutRefusal(Base):
    """A device that went back to A on its own during a rollout: never assigned B again in it."""

    __tablename__ = "rollout_refusals"
    rollout_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")


class RolloutDecision(Base):
    """Every decision on a rollout, automatic or by a person, with the figures it was made on."""

    __tablename__ = "rollout_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[str] = mapped_column(String(63), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    stage: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text, default="")
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)


class OtaDeviceModel(Base):
    """What a device last reported about one model name."""

    __tablename__ = "ota_device_models"
    device_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    model: Mapped[str] = mapped_column(String(40), primary_key=True)
    running: Mapped[str | None] = mapped_column(String(64), default=None)
    previous: Mapped[str | None] = mapped_column(String(64), default=None)
    on_probation: Mapped[bool] = mapped_column(default=False)
    last_code: Mapped[str | None] = mapped_column(String(40), default=None)
    refused: Mapped[dict[str, Any]] = mapped_column(default=dict)  # version -> reason
    reported_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class OtaDeviceState(Base):
    """Per device: last report (sequence and time) for de-duplication and the fleet view."""

    __tablename__ = "ota_devices"
    device_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    report_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    reported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OtaFigures(Base):
    """One device's figures for one model version over one time window: the reports received
    from ``opened_at`` on (for at most ``ota_window_s``) added up; ``at`` is the last one's time."""

    __tablename__ = "ota_figures"
    __table_args__ = (
        Index("ix_ota_figures_model_version_at", "model", "version", "at"),
        Index("ix_ota_figures_device_window", "device_id", "model", "version", "at"),
        Index("ix_ota_figures_at", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    opened_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    device_id: Mapped[str] = mapped_column(String(63))
    model: Mapped[str] = mapped_column(String(40))
    version: Mapped[str] = mapped_column(String(64))
    observations: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_p95_ms: Mapped[float] = mapped_column(default=0.0)
    mean_confidence: Mapped[float] = mapped_column(default=0.0)
    review_or_unreadable: Mapped[int] = mapped_column(BigInteger, default=0)
    defects: Mapped[int] = mapped_column(BigInteger, default=0)
    agreement_pairs: Mapped[int] = mapped_column(BigInteger, default=0)
    agreements: Mapped[int] = mapped_column(BigInteger, default=0)
    disagreements: Mapped[int] = mapped_column(BigInteger, default=0)


class Sample(Base):
    """A training sample a device uploaded (low-confidence reads): the sample inbox's rows.

    The image itself is a content-addressed blob (``cloud/services/blobs.py``), stored once
    however many rows name its ``sha256``.
    """

    __tablename__ = "samples"
    __table_args__ = (UniqueConstraint("device_id", "sample_id", name="uq_samples_device_sample"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(63))
    org: Mapped[str] = mapped_column(String(63), index=True)
    site: Mapped[str] = mapped_column(String(63))
    sample_id: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)  # inbox state
    read_status: Mapped[str | None] = mapped_column(String(16), default=None)
    confidence: Mapped[float | None] = mapped_column(default=None)
    model_version: Mapped[str | None] = mapped_column(String(64), default=None)
    captured_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class Label(Base):
    """What a sample shows, said by a person (console) or a device (an operator's correction in
    the edge panel): a sample's labeling history, never rewritten (``cloud/services/labels.py``).

    ``kind`` ``code``: ``value`` is the code text as printed on the crop (normalised; ``""`` when
    only the fields are known, as for edge corrections) and ``fields`` the parsed, canonical
    fields (``gtin``, ``lot``, ``expiry``...). ``kind`` ``defect``: ``value`` is the class and
    ``fields`` ``{"box": [x, y, w, h] | null}`` in image pixels. ``status``: ``current`` (the
    sample's label), ``disputed`` (still the sample's label, under question), ``superseded``
    (replaced by the label whose ``supersedes`` names it). At most one label per sample is not
    superseded (a partial unique index enforces it).
    """

    __tablename__ = "labels"
    __table_args__ = (
        Index(
            "uq_labels_live",
            "sample_pk",
            unique=True,
            sqlite_where=text("status != 'superseded'"),
            postgresql_where=text("status != 'superseded'"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sample_pk: Mapped[int] = mapped_column(ForeignKey("samples.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # code | defect
    value: Mapped[str] = mapped_column(Text)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    who: Mapped[str] = mapped_column(String(80))  # person:<name> | device:<id>
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="current", index=True)
    supersedes: Mapped[int | None] = mapped_column(Integer, default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    disputed_by: Mapped[str | None] = mapped_column(String(80), default=None)
    disputed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    dispute_reason: Mapped[str | None] = mapped_column(Text, default=None)


class Dataset(Base):
    """A versioned snapshot of labeled samples (``cloud/services/datasets.py``). ``id`` is the
    first 12 hex digits of ``digest``, the SHA-256 of its sorted members, so the same members
    always make the same dataset; ``parent`` is the snapshot before it (its regression set is
    carried over: that set only grows)."""

    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(80))
    parent: Mapped[str | None] = mapped_column(String(16), default=None)
    val_percent: Mapped[float] = mapped_column()
    regression_percent: Mapped[float] = mapped_column()
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str] = mapped_column(Text, default="")


class DatasetMember(Base):
    """One image of a dataset: the sample (by its bytes' hash), the label used, its split."""

    __tablename__ = "dataset_members"
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    sample_pk: Mapped[int] = mapped_column(ForeignKey("samples.id"))
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"))
    split: Mapped[str] = mapped_column(String(16))  # train | val | regression


class TrainingJob(Base):
    """A retraining job (``cloud/services/training.py``): which trainer on which dataset with
    which parameters, where it is (``stage``, ``step`` of ``total``), and what came of it.

    ``status``: ``queued``, ``running``, then ``failed`` (``reason``), ``rejected`` (the gate
    found it worse than production; ``reason`` and ``evaluation`` say why), ``awaiting_approval``
    (signed release, the rollout waits for an admin), ``released`` (signed, no rollout possible)
    or ``rolling_out`` (signed and its canary rollout ``rollout_id`` created).
    """

    __tablename__ = "training_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # codes | defect
    model: Mapped[str] = mapped_column(String(40))  # release name: ocr.crnn | defect
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    queue: Mapped[str] = mapped_column(String(16))  # inprocess | procrastinate
    queue_job: Mapped[int | None] = mapped_column(BigInteger, default=None)
    status: Mapped[str] = mapped_column(String(24), default="queued", index=True)
    stage: Mapped[str] = mapped_column(String(40), default="queued")
    step: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(default=None)  # last progress write
    # the process that claimed it, "host boot-id pid start-ticks": a restart on the same host can
    # tell a job whose process is gone at once instead of waiting for the stale timeout
    worker: Mapped[str | None] = mapped_column(String(160), default=None)
    candidate: Mapped[dict[str, Any]] = mapped_column(default=dict)  # file, version, sha256...
    evaluation: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the gate's figures
    version: Mapped[str | None] = mapped_column(String(64), default=None)  # released version
    rollout_id: Mapped[str | None] = mapped_column(String(63), default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
