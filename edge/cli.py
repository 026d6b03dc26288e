"""The ``dockgate`` command: one entry point, sub-commands loaded only when used.

Each area keeps its click commands next to its code; this module only maps names to them,
lazily, so ``dockgate --help`` does not import onnxruntime or FastAPI.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from edge.contracts.errors import DockgateError

# name -> ("module:attribute", one-line help shown by ``dockgate --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "edge": (
        "edge.node_cli:app",
        "Run and administer this edge node (config, enroll, status, users).",
    ),
    "cloud": ("cloud.cli:app", "Cloud service: fleet CA, ingest API, tokens, revocation, users."),
    "errors": ("edge.errors_cli:errors", "List every stable error code and its meaning."),
    "models": (
        "edge.vision.models_cli:app",
        "Models: defect data and training, code-line recogniser training, installed models.",
    ),
    "ota": ("ota.cli:app", "Signed model releases (TUF): keys, release, activate, refresh."),
    "ledger": ("edge.ledger.cli:app", "Edge stock ledger: verify, stock, history, KPIs, bookings."),
    "demo": ("edge.demo:demo", "Run the whole appliance end to end on embedded defaults."),
    "sim": ("edge.sim_cli:sim", "Device simulators: AGVs, the sorting-line PLC, a serial scanner."),
    "verify": ("edge.trust.verify_cli:verify_cmd", "Verify signed envelopes offline (FILE or -)."),
    "read": ("edge.vision.ocr.cli:read", "Read carton codes (GTIN, lot, expiry) from images."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use.

    ``commands_map`` maps a name to ``("module:attribute", one-line help)``.
    """

    def __init__(
        self, *args: Any, commands_map: dict[str, tuple[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.commands_map = COMMANDS if commands_map is None else commands_map

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands_map)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands_map:
            return None
        target, help_text = self.commands_map[cmd_name]
        module_name, attr = target.split(":")
        try:
            command = _as_click(getattr(importlib.import_module(module_name), attr), cmd_name)
        except (ImportError, AttributeError, TypeError) as exc:
            return _unavailable(cmd_name, help_text, exc)
        command.help = command.help or help_text
        command.short_help = help_text
        return command


def _as_click(obj: Any, name: str) -> click.Command:
    if not isinstance(obj, click.Command):
        raise TypeError(f"{name}: expected a click command, got {type(obj).__name__}")
    return obj


def _unavailable(name: str, help_text: str, exc: Exception) -> click.Command:
    @click.command(name=name, help=f"{help_text} (not available: {exc})")
    def _cmd() -> None:
        raise click.ClickException(f"'{name}' is not available in this build: {exc}")

    _cmd.short_help = f"{help_text} [unavailable]"
    return _cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dockgate")
def cli() -> None:
    """Dockgate: edge vision and inventory appliance for warehouse docks.

    Reads carton codes and damage at the inbound gate, books them into a signed offline-first
    stock ledger, drives AGVs, scanners and the sorting-line PLC, and syncs with the cloud.
    Start with 'dockgate demo' or 'dockgate COMMAND --help'.
    """


def main() -> None:
    """Console entry point: stable error codes become one line and exit code 2."""
    try:
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DockgateError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
