"""The edge node's configuration: one TOML file, environment overrides, validated at start-up.

Each area owns its section model in its own module; this module only assembles them.
Environment overrides use ``DOCKGATE_<SECTION>__<KEY>``, e.g. ``DOCKGATE_LEDGER__PATH``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from edge.agv.config import AgvConfig
from edge.camera.settings import CameraConfig
from edge.contracts.settings import NodeSettings, StrictModel, load_settings
from edge.panel.config import PanelConfig
from edge.runtime.settings import GateConfig, PipelineConfig
from edge.sync.config import SyncConfig
from edge.vision.defects.config import DefectConfig
from edge.vision.ocr.config import OcrConfig
from firmware_bridge.config import LineIOConfig, ScannerConfig
from firmware_bridge.noop import NoopLineConfig
from firmware_bridge.serial.config import NoScannerConfig
from ota.config import OtaConfig

DEVICE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


class DeviceConfig(StrictModel):
    id: str = Field(
        "edge-01",
        pattern=DEVICE_ID_PATTERN,
        description="device id (certificate subject): 2-63 lowercase letters, digits, dashes",
    )
    site: str = Field(
        "site-01", pattern=DEVICE_ID_PATTERN, description="site (warehouse) this node belongs to"
    )
    org: str = Field(
        "org-01",
        pattern=DEVICE_ID_PATTERN,
        description="organisation; QA freezes propagate within it",
    )
    data_dir: Path = Field(
        Path("data/edge"), description="directory for the ledger, keys, samples and state"
    )


class LedgerConfig(StrictModel):
    path: Path | None = Field(
        None, description="SQLite ledger file; default <device.data_dir>/ledger.db"
    )
    expiry_warning_days: int = Field(
        30, ge=0, le=3650, description="days before expiry from which a pick raises a warning"
    )
    expiry_block_days: int = Field(
        7, ge=0, le=3650, description="days before expiry from which sale and shipping are refused"
    )
    synchronous: str = Field(
        "FULL",
        pattern="^(FULL|NORMAL)$",
        description="SQLite synchronous mode: FULL in production; NORMAL only in power-loss tests",
    )
    max_size_mb: int = Field(
        0, ge=0, description="cap on the ledger database size in MiB (0 = no cap beyond the disk)"
    )
    utc_offset_minutes: int = Field(
        0,
        ge=-720,
        le=840,
        description="local time minus UTC in minutes (480 = China); expiry days are local days",
    )

    def resolved_path(self, device: DeviceConfig) -> Path:
        return self.path if self.path is not None else device.data_dir / "ledger.db"


class EdgeConfig(NodeSettings):
    """Everything an edge node reads at start-up."""

    device: DeviceConfig = Field(DeviceConfig(), description="device identity")
    ledger: LedgerConfig = Field(LedgerConfig(), description="stock ledger")
    agv: AgvConfig = Field(AgvConfig(), description="AGV dispatch over MQTT (VDA 5050)")
    sync: SyncConfig = Field(SyncConfig(), description="cloud sync, device key and certificate")
    panel: PanelConfig = Field(PanelConfig(), description="operator web panel (edge/panel)")
    ocr: OcrConfig = Field(OcrConfig(), description="carton-code reader (edge/vision/ocr)")
    defects: DefectConfig = Field(DefectConfig(), description="defect model, thresholds")
    line_io: LineIOConfig = Field(NoopLineConfig(), description="sorting-line PLC over Modbus")
    scanner: ScannerConfig = Field(NoScannerConfig(), description="serial barcode scanner")
    camera: CameraConfig = Field(CameraConfig(), description="gate camera (edge/camera)")
    gate: GateConfig = Field(GateConfig(), description="booking and sorting at the gate")
    pipeline: PipelineConfig = Field(PipelineConfig(), description="stages and back-pressure")
    ota: OtaConfig = Field(OtaConfig(), description="signed model updates (ota/)")

    @field_validator("ota")
    @classmethod
    def _crnn_release_must_matter(cls, ota: OtaConfig, info: ValidationInfo) -> OtaConfig:
        """A CRNN kept up to date over the air while the reader uses PP-OCR only: every CRNN
        release would be downloaded and installed and change nothing the line reads."""
        ocr = info.data.get("ocr")
        if "ocr.crnn" in ota.models and isinstance(ocr, OcrConfig) and ocr.recognizer == "ppocr":
            raise ValueError(
                "ota.models lists 'ocr.crnn' but ocr.recognizer = 'ppocr' never runs the CRNN: "
                "set ocr.recognizer to crnn, both or cascade, or drop 'ocr.crnn' from ota.models"
            )
        return ota


def load_edge_config(path: Path | None = None) -> EdgeConfig:
    """Load and validate the edge config; raises ``DockgateError(CONFIG_INVALID)``."""
    return load_settings(EdgeConfig, path)
