"""Run the panel: build its services from the edge config and serve them with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import uvicorn
from fastapi import FastAPI

from edge.config import EdgeConfig
from edge.panel.app import create_app
from edge.panel.config import PanelConfig
from edge.panel.equipment import SyncStatusProvider
from edge.panel.providers import NodeDeviceProvider
from edge.panel.review_store import SampleReviewQueue
from edge.panel.services import PanelServices, StatusProvider
from edge.runtime.bus import Bus

SYNC_STATE_FILE = "sync-state.json"  # written by the sync agent (edge/sync/cli.py STATE_FILE)


@runtime_checkable
class Closeable(Protocol):
    def close(self) -> None: ...


def build_services(config: EdgeConfig, bus: Bus | None = None) -> PanelServices:
    """Services for a stand-alone panel: the ledger file, the sample store and device facts.

    Inside the full runtime the lead's wiring passes its own bus and providers instead.
    """
    from edge.runtime import components

    data_dir = config.device.data_dir
    ledger = components.open_ledger(config, components.device_signer(config))
    equipment: list[StatusProvider] = [SyncStatusProvider(ledger, data_dir / SYNC_STATE_FILE)]
    return PanelServices(
        bus=bus or Bus(),
        device=NodeDeviceProvider(
            config.device.id, config.device.site, config.sync.resolved_trust_dir(data_dir)
        ),
        ledger=ledger,
        review=SampleReviewQueue(components.sample_store(config)),
        equipment=equipment,
        expiry_warning_days=config.ledger.expiry_warning_days,
        expiry_block_days=config.ledger.expiry_block_days,
    )


def uvicorn_config(app: FastAPI, panel: PanelConfig, port: int | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=panel.host,
        port=port or panel.port,
        ssl_certfile=str(panel.tls_cert) if panel.tls_cert else None,
        ssl_keyfile=str(panel.tls_key) if panel.tls_key else None,
        log_level="warning",
        access_log=False,  # URLs can carry search terms; the audit log records what matters
        proxy_headers=False,  # the panel is served directly; never trust X-Forwarded-For
        server_header=False,
        timeout_graceful_shutdown=2,  # live streams end then; browsers reconnect by themselves
    )


def serve(config: EdgeConfig, panel: PanelConfig) -> None:
    services = build_services(config)
    app = create_app(services, panel, panel.resolved_db(config.device.data_dir))
    try:
        uvicorn.Server(uvicorn_config(app, panel)).run()
    finally:
        if isinstance(services.ledger, Closeable):
            services.ledger.close()


def panel_db_path(config: EdgeConfig, panel: PanelConfig) -> Path:
    return panel.resolved_db(config.device.data_dir)
