"""``dockgate errors``: the stable error codes, as a table or as the README's Markdown."""

from __future__ import annotations

import click

from edge.contracts.errors import DESCRIPTIONS, ErrorCode, markdown_table


@click.command()
@click.option("--markdown", is_flag=True, help="Print the README's Markdown table.")
def errors(markdown: bool) -> None:
    """List every stable error code and what it means."""
    if markdown:
        click.echo(markdown_table())
        return
    width = max(len(code.value) for code in ErrorCode)
    for code in ErrorCode:
        click.echo(f"{code.value:<{width}}  {DESCRIPTIONS[code]}")
