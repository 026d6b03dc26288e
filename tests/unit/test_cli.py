"""The command line: every command has useful help, errors are one line with a code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edge.cli import COMMANDS, cli

REPO = Path(__file__).resolve().parents[2]


def _walk(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{' '.join([*path, name])} failed to load"
            found += _walk(sub, [*path, name])
    return found


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for path, command in _walk(cli, []):
        assert command.help and len(command.help.strip()) > 15, f"no help for {path}"
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_registered_commands_load(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert "[unavailable]" not in (command.short_help or ""), command.help


def test_entry_point_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edge.cli_main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "dockgate" in out.stdout.lower()


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "edge.toml"
    bad.write_text("[ledger]\nexpiry_block_days = -3\n")
    result = CliRunner().invoke(cli, ["edge", "config", "check", str(bad)])
    assert result.exit_code != 0
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert "ledger.expiry_block_days" in lines[0] and "-3" in lines[0]
    assert "Traceback" not in result.output


def test_example_config_is_valid() -> None:
    result = CliRunner().invoke(
        cli, ["edge", "config", "check", str(REPO / "fixtures" / "configs" / "edge.example.toml")]
    )
    assert result.exit_code == 0, result.output
