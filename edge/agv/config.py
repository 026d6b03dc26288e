"""The ``[agv]`` config section: MQTT broker, VDA 5050 identity and dispatch policy."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from edge.contracts.settings import StrictModel

# A topic level may not contain '/', '$', '+' or '#' (VDA 5050 section 6.2 and MQTT wildcards).
TOPIC_LEVEL = r"^[A-Za-z0-9_.:-]{1,64}$"
REPO = Path(__file__).resolve().parents[2]


class AgvConfig(StrictModel):
    """AGV dispatch over MQTT (VDA 5050 2.1). Disabled unless a site map is given."""

    broker_host: str = Field("127.0.0.1", min_length=1, description="MQTT broker host name or IP")
    broker_port: int = Field(1883, ge=1, le=65535, description="MQTT broker TCP port")
    username: str | None = Field(None, max_length=128, description="MQTT user name (optional)")
    password_file: Path | None = Field(
        None, description="file holding the MQTT password (mode 0600); never put it in the config"
    )
    tls: bool = Field(False, description="use TLS to the broker (port is usually 8883)")
    tls_ca_file: Path | None = Field(
        None, description="CA bundle that signs the broker certificate (default: system store)"
    )
    client_id: str = Field(
        "dockgate-mc", pattern=TOPIC_LEVEL, description="MQTT client id of this master control"
    )
    keepalive_s: int = Field(15, ge=5, le=300, description="MQTT keep-alive in seconds")
    interface_name: str = Field(
        "uagv", pattern=TOPIC_LEVEL, description="first topic level, {interfaceName}/v2/..."
    )
    manufacturer: str | None = Field(
        None,
        pattern=TOPIC_LEVEL,
        description="only drive AGVs of this manufacturer (topic level); unset = any manufacturer",
    )
    battery_threshold: float = Field(
        30.0, ge=0, le=100, description="an AGV needs more than this battery charge (%) for a task"
    )
    charge_until: float = Field(
        90.0,
        ge=1,
        le=100,
        description="an idle AGV at or below battery_threshold charges until this charge (%)",
    )
    state_timeout_s: float = Field(
        10.0, ge=1, le=600, description="an AGV that sends no state this long counts as failed"
    )
    order_ack_timeout_s: float = Field(
        3.0,
        ge=0.2,
        le=120,
        description="resend an order whose state echo (orderId+orderUpdateId) is this late",
    )
    max_order_resends: int = Field(
        5, ge=0, le=100, description="unacknowledged resends before the order counts as failed"
    )
    base_nodes: int = Field(
        3,
        ge=2,
        le=1000,
        description="nodes released (base) per order message; the rest is horizon, released "
        "later by orderUpdateId extensions",
    )
    sitemap: Path | None = Field(
        None, description="site map (TOML or JSON): nodes, edges, locations, quarantine zone"
    )
    db_path: Path | None = Field(
        None, description="SQLite file of dispatch tasks; default <device.data_dir>/dispatch.db"
    )
    schemas_dir: Path | None = Field(
        None,
        description="official VDA 5050 2.1.0 JSON schemas; default $DOCKGATE_VDA5050_SCHEMAS or "
        "../shared/vda5050; without them messages are checked by Dockgate's own models",
    )
    tick_s: float = Field(
        0.2, ge=0.01, le=5, description="how often timeouts and the waiting queue are checked"
    )

    def resolved_schemas_dir(self) -> Path:
        """Where to look for the official schemas (the directory may not exist)."""
        if self.schemas_dir is not None:
            return self.schemas_dir
        env = os.environ.get("DOCKGATE_VDA5050_SCHEMAS")
        return Path(env) if env else REPO.parent / "shared" / "vda5050"

    def resolved_db_path(self, data_dir: Path) -> Path:
        return self.db_path if self.db_path is not None else data_dir / "dispatch.db"

    def read_password(self) -> str | None:
        """The broker password from ``password_file`` (kept out of config and logs)."""
        if self.password_file is None:
            return None
        return self.password_file.read_text(encoding="utf-8").strip()
