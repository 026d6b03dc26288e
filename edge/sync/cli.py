"""``dockgate edge enroll``, ``dockgate edge status`` and ``dockgate edge sync``."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import click

from edge.config import EdgeConfig, load_edge_config
from edge.contracts.errors import DockgateError
from edge.sync.state import StateFile

STATE_FILE = "sync-state.json"

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    envvar="DOCKGATE_CONFIG",
    help="edge TOML config (default: built-in defaults + DOCKGATE_* variables)",
)


def _load(path: Path | None) -> EdgeConfig:
    try:
        return load_edge_config(path)
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None


@click.command("enroll")
@config_option
@click.option("--cloud", "cloud_url", required=True, help="cloud base URL, e.g. https://cloud:8080")
@click.option(
    "--token",
    required=True,
    envvar="DOCKGATE_ENROLL_TOKEN",
    help="one-time enrollment token from an admin ('dockgate cloud token create')",
)
@click.option(
    "--key-type", type=click.Choice(["ed25519", "p256"]), default="ed25519", show_default=True
)
def enroll_cmd(config_path: Path | None, cloud_url: str, token: str, key_type: str) -> None:
    """Generate this device's key (kept here, mode 0600) and get its certificate from the cloud."""
    from edge.contracts.envelope import cert_fingerprint
    from edge.trust.enroll import enroll

    cfg = _load(config_path)
    trust_dir = cfg.sync.resolved_trust_dir(cfg.device.data_dir)
    verify = cfg.sync.tls_verify()
    try:
        ident = enroll(trust_dir, cloud_url, token, cfg.device.id, key_type, verify_tls=verify)
    except DockgateError as exc:
        raise click.ClickException(f"{exc.code.value}: {exc.message}") from None
    click.echo(f"enrolled {cfg.device.id}: certificate {cert_fingerprint(ident.cert)}")
    click.echo(f"valid until {ident.cert.not_valid_after_utc:%Y-%m-%d}; key in {trust_dir}")


def status_data(cfg: EdgeConfig) -> dict[str, Any]:
    """Everything ``status`` prints, as a dict (the panel can show the same)."""
    from edge.contracts.envelope import cert_fingerprint
    from edge.ledger import Ledger
    from edge.trust.keys import load_identity

    data: dict[str, Any] = {
        "device": cfg.device.id,
        "site": cfg.device.site,
        "cloud_url": cfg.sync.cloud_url,
    }
    trust_dir = cfg.sync.resolved_trust_dir(cfg.device.data_dir)
    try:
        ident = load_identity(trust_dir)
        data["enrolled"] = True
        data["certificate"] = cert_fingerprint(ident.cert)
        data["certificate_expires"] = ident.cert.not_valid_after_utc.isoformat()
    except DockgateError as exc:
        data["enrolled"] = False
        data["enrollment_error"] = f"{exc.code.value}: {exc.message}"
    ledger_path = cfg.ledger.resolved_path(cfg.device)
    if ledger_path.exists():
        with Ledger.open(ledger_path, cfg.device.id) as ledger:
            stats = ledger.outbox_stats()
            data["pending"] = stats.pending
            data["unsigned"] = stats.unsigned
            data["oldest_pending"] = stats.oldest_ts
            data["head_seq"] = ledger.head()[0]
    else:
        data["pending"] = 0
    state = StateFile(cfg.device.data_dir / STATE_FILE).load()
    data.update(
        last_success=state.last_success,
        last_error_code=state.last_error_code,
        last_error_message=state.last_error_message,
        last_error_at=state.last_error_at,
        consecutive_failures=state.consecutive_failures,
        cloud_hwm=state.cloud_hwm,
        freezes_applied=state.freezes_applied,
        conflicts_reported=state.conflicts_reported,
    )
    return data


@click.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status_cmd(config_path: Path | None, as_json: bool) -> None:
    """Enrollment and sync state: pending events, last success, last error (code + sentence)."""
    data = status_data(_load(config_path))
    if as_json:
        click.echo(json.dumps(data, indent=1))
        return
    click.echo(f"device       {data['device']} (site {data['site']})")
    if data["enrolled"]:
        click.echo(f"certificate  {data['certificate']} (expires {data['certificate_expires']})")
    else:
        click.echo(f"certificate  none — {data['enrollment_error']}")
    click.echo(f"cloud        {data['cloud_url'] or 'not configured (offline)'}")
    click.echo(
        f"pending      {data['pending']} events"
        + (f", oldest {data['oldest_pending']}" if data.get("oldest_pending") else "")
        + (f", {data['unsigned']} unsigned" if data.get("unsigned") else "")
    )
    click.echo(f"cloud holds  up to seq {data['cloud_hwm']}")
    click.echo(f"last success {data['last_success'] or 'never'}")
    if data["last_error_code"]:
        click.echo(
            f"last error   {data['last_error_code']}: {data['last_error_message']}"
            f" (at {data['last_error_at']}, {data['consecutive_failures']} in a row)"
        )
    else:
        click.echo("last error   none")


@click.command("sync")
@config_option
@click.option("--once", is_flag=True, help="push until the outbox is empty, then exit")
def sync_cmd(config_path: Path | None, once: bool) -> None:
    """Run the sync agent: push the outbox to the cloud and apply fleet QA freezes."""
    cfg = _load(config_path)
    if not cfg.sync.cloud_url:
        raise click.ClickException("sync.cloud_url is not set")
    from edge.ledger import Ledger
    from edge.sync.agent import SyncAgent
    from edge.sync.client import CloudClient
    from edge.trust.keys import load_identity
    from edge.trust.signer import DeviceSigner

    try:
        signer = DeviceSigner(load_identity(cfg.sync.resolved_trust_dir(cfg.device.data_dir)))
    except DockgateError as exc:
        raise click.ClickException(f"{exc.code.value}: {exc.message}") from None
    ledger = Ledger.open(
        cfg.ledger.resolved_path(cfg.device),
        cfg.device.id,
        signer=signer,
        synchronous=cfg.ledger.synchronous,
    )
    verify = cfg.sync.tls_verify()
    client = CloudClient(cfg.sync.cloud_url, signer, cfg.sync.timeout_s, verify_tls=verify)
    agent = SyncAgent(ledger, client, signer, StateFile(cfg.device.data_dir / STATE_FILE), cfg.sync)
    try:
        if once:
            try:
                click.echo(f"sent {agent.drain()} events")
            except DockgateError as exc:
                raise click.ClickException(f"{exc.code.value}: {exc.message}") from None
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        threads = agent.start(stop)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            stop.set()
        for t in threads:
            t.join(timeout=cfg.sync.freeze_wait_s + 20)
    finally:
        client.close()
        ledger.close()
