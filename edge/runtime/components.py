"""The one place that builds the edge node's components from its config.

Every command and the running node open the ledger, load the signer and find the sample store
through these functions, so they agree on paths, expiry windows and the device key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.config import EdgeConfig
from edge.contracts.errors import DockgateError

if TYPE_CHECKING:
    from edge.ledger import Ledger
    from edge.runtime.sample_writer import BackgroundSampleStore
    from edge.trust.signer import DeviceSigner
    from edge.vision.ocr.samples import SampleStore


def data_dir(config: EdgeConfig) -> Path:
    """The node's data directory, created owner-only (it holds the ledger and the device key)."""
    path = config.device.data_dir
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def device_signer(config: EdgeConfig) -> DeviceSigner | None:
    """The device's signer once enrolled; ``None`` before (the ledger signs pending events in
    order once the node is enrolled, so a new node works from its first carton)."""
    from edge.trust.keys import load_identity
    from edge.trust.signer import DeviceSigner

    try:
        return DeviceSigner(load_identity(config.sync.resolved_trust_dir(config.device.data_dir)))
    except DockgateError:
        return None


def open_ledger(config: EdgeConfig, signer: Any | None = None) -> Ledger:
    from edge.ledger import Ledger

    led = config.ledger
    return Ledger.open(
        led.resolved_path(config.device),
        config.device.id,
        signer=signer,
        expiry_warning_days=led.expiry_warning_days,
        expiry_block_days=led.expiry_block_days,
        synchronous=led.synchronous,
        max_size_mb=led.max_size_mb,
        utc_offset_minutes=led.utc_offset_minutes,
    )


def sample_store(config: EdgeConfig) -> SampleStore:
    """The OCR reader's store of REVIEW/UNREADABLE crops, where and as large as ``[ocr]`` says."""
    from edge.vision.ocr.samples import SampleStore

    return SampleStore(_samples_root(config), max_bytes=config.ocr.samples_max_mb * 1024 * 1024)


def reader_sample_store(config: EdgeConfig) -> BackgroundSampleStore:
    """The same store for the reader itself, written by a thread of its own (close it)."""
    from edge.runtime.sample_writer import BackgroundSampleStore

    return BackgroundSampleStore(
        _samples_root(config), max_bytes=config.ocr.samples_max_mb * 1024 * 1024
    )


def _samples_root(config: EdgeConfig) -> Path:
    return config.ocr.samples_dir or config.device.data_dir / "ocr-samples"
