"""Cloud service configuration: one TOML file plus ``DOCKGATE_CLOUD_*`` environment overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from edge.contracts.settings import NodeSettings, load_settings


class CloudConfig(NodeSettings):
    """Everything the cloud service reads at start-up. It keeps no other state than its database."""

    model_config = SettingsConfigDict(env_prefix="DOCKGATE_CLOUD_", extra="forbid", frozen=True)

    database_url: str = Field(
        "sqlite:///data/cloud/cloud.db",
        min_length=9,
        description="SQLAlchemy URL: sqlite:///FILE (default) or postgresql://USER@HOST/DB",
    )
    ota_dir: Path = Field(
        Path("data/cloud/ota"),
        description="TUF model-release repository served at /ota (written by 'dockgate ota')",
    )
    blob_dir: Path = Field(
        Path("data/cloud/blobs"),
        description="content-addressed blob store of uploaded samples (local directory)",
    )
    blob_store: Literal["local", "s3"] = Field(
        "local",
        description="where sample images go: 'local' (blob_dir) or 's3' (any S3-compatible store, "
        "credentials from the standard boto3 chain: AWS_* variables, ~/.aws, instance role)",
    )
    s3_endpoint_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="S3-compatible endpoint (MinIO, Ceph RGW...); unset = AWS S3 of s3_region",
    )
    s3_bucket: str = Field(
        "",
        max_length=63,
        validate_default=True,  # so a missing bucket with blob_store = s3 is refused by name
        description="bucket of the sample blobs (needed when blob_store = s3)",
    )
    s3_prefix: str = Field(
        "samples/",
        max_length=200,
        pattern=r"^([A-Za-z0-9._-]+/)*$",
        description="key prefix inside the bucket ('' or ending in '/')",
    )
    s3_region: str | None = Field(None, max_length=40, description="S3 region (e.g. eu-central-1)")
    issuing_dir: Path = Field(
        Path("data/cloud/ca/issuing"),
        description="issuing CA directory written by 'dockgate cloud ca init' (never the root)",
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="largest request body accepted"
    )
    clock_skew_s: int = Field(
        900, ge=30, le=86400, description="allowed device clock difference for request signatures"
    )
    cert_days: int = Field(730, ge=1, le=3650, description="validity of issued device certificates")
    session_minutes: int = Field(
        480, ge=5, le=10080, description="absolute lifetime of a person's login session"
    )
    freeze_poll_s: float = Field(
        0.5, ge=0.05, le=5.0, description="how often a freeze long-poll looks at the database"
    )
    login_max_failures: int = Field(
        5, ge=1, le=100, description="failed logins before an account waits login_lock_s"
    )
    login_lock_s: int = Field(60, ge=1, le=86400, description="wait after too many failed logins")
    ota_poll_s: float = Field(
        30.0, ge=0.5, le=86400.0, description="how often devices ask for OTA assignments"
    )
    ota_poll_active_s: float = Field(
        5.0,
        ge=0.5,
        le=86400.0,
        description="poll period of devices running or shadowing a version still under judgement",
    )
    ota_window_s: int = Field(
        60, ge=1, le=3600, description="devices' OTA figures are added up per window of this"
    )
    ota_figures_days: int = Field(
        14, ge=1, le=3650, description="keep per-device OTA figure windows this many days"
    )
    rollout_eval_s: float = Field(
        5.0, ge=0.0, le=3600.0, description="rollout evaluator period; 0 = no background evaluator"
    )

    jobs_dir: Path = Field(
        Path("data/cloud/jobs"),
        description="training jobs' work folders: the exported dataset, the candidate ONNX file "
        "and its model card (one folder per job)",
    )
    training_queue: Literal["inprocess", "procrastinate"] = Field(
        "inprocess",
        description="where training jobs run: 'inprocess' (a worker thread of the service or "
        "the CLI, the demo) or 'procrastinate' (a PostgreSQL-backed queue, [queue] extra; run "
        "'dockgate cloud train worker')",
    )
    training_queue_url: str | None = Field(
        None,
        pattern=r"^postgres(ql)?(\+psycopg)?://",
        description="PostgreSQL URL of the procrastinate queue; unset = database_url",
    )
    training_threads: int = Field(
        1, ge=1, le=64, description="CPU threads a training job may use (the box is shared)"
    )
    training_stale_s: int = Field(
        1800,
        ge=60,
        le=7 * 86400,
        description="a queued or running job with no progress for this long is marked failed "
        "(the process running it was killed) when a training queue starts",
    )
    auto_rollout: dict[str, bool] = Field(
        {"defect": True, "ocr.crnn": False},
        description="per model name: start the canary rollout of a released candidate at once "
        "(true) or wait for an admin's approval click (false, also for names not listed)",
    )
    auto_rollout_soak_s: int = Field(
        3600, ge=0, le=30 * 86400, description="soak time of each stage of a training rollout"
    )
    auto_rollout_observations: int = Field(
        200, ge=1, le=10**6, description="observations each stage of a training rollout needs"
    )

    @field_validator("s3_bucket")
    @classmethod
    def _s3_needs_a_bucket(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("blob_store") == "s3" and not value:
            raise ValueError("blob_store = 's3' needs a bucket")
        return value

    @field_validator("training_queue_url")
    @classmethod
    def _queue_needs_postgres(cls, value: str | None, info: ValidationInfo) -> str | None:
        url = value or str(info.data.get("database_url", ""))
        if info.data.get("training_queue") == "procrastinate" and not url.startswith("postgres"):
            raise ValueError("training_queue = 'procrastinate' needs a PostgreSQL URL")
        return value


def load_cloud_config(path: Path | None = None) -> CloudConfig:
    """Load and validate; raises ``DockgateError(CONFIG_INVALID)`` with one line."""
    return load_settings(CloudConfig, path)
