"""The ``[sync]`` section of the edge config: where the cloud is, how hard to push, key paths."""

from __future__ import annotations

import ssl
from pathlib import Path

from pydantic import Field

from edge.contracts.settings import StrictModel
from edge.contracts.sync import MAX_BATCH


class SyncConfig(StrictModel):
    cloud_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        description="base URL of the cloud service, e.g. https://cloud.example (unset: offline)",
    )
    trust_dir: Path | None = Field(
        None, description="device key, certificate and CA chain; default <device.data_dir>/trust"
    )
    tls_ca_file: Path | None = Field(
        None, description="CA bundle for the cloud's HTTPS certificate (default: system store)"
    )
    batch_size: int = Field(500, ge=1, le=MAX_BATCH, description="envelopes per ingest request")
    pipeline: int = Field(
        2, ge=1, le=4, description="batches in flight at once (the cloud verifies them in parallel)"
    )
    interval_s: float = Field(
        1.0, ge=0.05, le=300, description="how often an idle agent looks at the outbox"
    )
    backoff_base_s: float = Field(
        1.0, ge=0.01, le=60, description="first retry delay after a failure (doubles, jittered)"
    )
    backoff_cap_s: float = Field(
        60.0, ge=0.1, le=3600, description="longest retry delay after repeated failures"
    )
    timeout_s: float = Field(30.0, ge=1, le=300, description="HTTP timeout per ingest request")
    freeze_wait_s: float = Field(
        20.0, ge=0.5, le=55, description="long-poll wait for fleet QA freezes (server holds it)"
    )

    samples: bool = Field(
        True, description="upload low-confidence OCR samples (review/unreadable) to the cloud"
    )
    samples_threshold: float = Field(
        0.85, ge=0.0, le=1.0, description="samples whose read confidence is below this are sent"
    )
    samples_max_kib_s: float = Field(
        64.0, gt=0, le=100_000, description="bandwidth cap of sample uploads (KiB/s, averaged)"
    )
    samples_batch: int = Field(
        20, ge=1, le=200, description="samples looked at per round (one 'have' query each)"
    )

    def tls_verify(self) -> bool | ssl.SSLContext:
        """What httpx verifies the cloud's HTTPS certificate against."""
        if self.tls_ca_file is None:
            return True
        return ssl.create_default_context(cafile=str(self.tls_ca_file))

    def resolved_trust_dir(self, data_dir: Path) -> Path:
        return self.trust_dir if self.trust_dir is not None else data_dir / "trust"
