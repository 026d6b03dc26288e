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
