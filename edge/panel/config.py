"""The ``[panel]`` config section: where the web panel listens and how it guards logins."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge.contracts.settings import StrictModel

Language = Literal["zh-CN", "en"]


class PanelConfig(StrictModel):
    """Local web panel served by the edge node (``dockgate edge panel``)."""

    host: str = Field(
        "127.0.0.1",
        min_length=1,
        max_length=253,
        description="address to listen on; 0.0.0.0 to reach the panel from tablets on the LAN",
    )
    port: int = Field(8080, ge=1, le=65535, description="TCP port of the panel")
    db_path: Path | None = Field(
        None, description="accounts, sessions and audit SQLite file; default <data_dir>/panel.db"
    )
    tls_cert: Path | None = Field(
        None, description="PEM certificate; with tls_key the panel serves HTTPS and Secure cookies"
    )
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert (mode 0600)")
    session_idle_minutes: int = Field(
        30, ge=1, le=24 * 60, description="a session ends after this many minutes without a request"
    )
    session_absolute_hours: int = Field(
        12, ge=1, le=7 * 24, description="a session ends this many hours after login, used or not"
    )
    login_max_failures: int = Field(
        5, ge=1, le=100, description="failed logins (per account or per address) before a pause"
    )
    login_window_s: int = Field(
        300, ge=10, le=86400, description="window in seconds in which failed logins are counted"
    )
    login_lockout_s: int = Field(
        60,
        ge=1,
        le=3600,
        description="pause in seconds after too many failures; it always ends (no permanent lock)",
    )
    language: Language = Field("zh-CN", description="default language: zh-CN or en")
    live_cartons: int = Field(
        30, ge=5, le=500, description="how many recent cartons the live line view keeps"
    )
    max_body_kb: int = Field(
        64, ge=4, le=4096, description="largest accepted request body in KiB (REQUEST_TOO_LARGE)"
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> PanelConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def resolved_db(self, data_dir: Path) -> Path:
        return self.db_path if self.db_path is not None else data_dir / "panel.db"
