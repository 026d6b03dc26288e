"""``dockgate edge``: run and administer this edge node."""

from __future__ import annotations

from pathlib import Path

import click

from edge.config import load_edge_config
from edge.contracts.errors import DockgateError
from edge.panel.cli import panel_command, user_group
from edge.sync import cli as sync_cli


@click.group(name="edge")
def app() -> None:
    """Run and administer this edge node: check its config, enroll it, show its status."""


@app.group("config")
def config_group() -> None:
    """Edge configuration files (TOML, with DOCKGATE_* environment overrides)."""


@config_group.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def config_check(file: Path) -> None:
    """Validate FILE (plus DOCKGATE_* environment overrides) without starting anything."""
    try:
        config = load_edge_config(file)
    except DockgateError as exc:
        raise click.ClickException(f"config error: {exc.message}") from None
    click.echo(f"OK {file}: device {config.device.id} at site {config.device.site}")


app.add_command(sync_cli.enroll_cmd)
app.add_command(sync_cli.status_cmd)
app.add_command(sync_cli.sync_cmd)
app.add_command(user_group)
app.add_command(panel_command)


@app.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The node's TOML config (default: built-in defaults plus DOCKGATE_* variables).",
)
def run(config_path: Path | None) -> None:
    """Run the edge node in the foreground: camera, reader, ledger, line, AGVs, panel, sync.

    Stops cleanly on Ctrl-C or SIGTERM. /healthz, /readyz and /metrics are served on the
    panel's port.
    """
    import signal
    import threading

    from edge.runtime.node import EdgeNode

    try:
        config = load_edge_config(config_path)
    except DockgateError as exc:
        raise click.ClickException(f"config error: {exc.message}") from None
    node = EdgeNode(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        node.start()
        click.echo(f"edge node {config.device.id} running; panel on port {config.panel.port}")
        while not stop.wait(5):
            click.echo(node.status_line())
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
