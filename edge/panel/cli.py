"""``dockgate edge user ...`` (panel accounts, on the console) and ``dockgate edge panel``.

The first admin is created here; the panel has no default account or password. Passwords are
read from the terminal without echo (or from stdin with ``--password-stdin`` for provisioning
scripts) and never appear on the command line, in logs or in the audit detail.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edge.contracts.errors import DockgateError

CONFIG_OPTION = click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="edge config TOML (default: built-in defaults plus DOCKGATE_* environment)",
)
ROLES = ("operator", "qa", "supervisor", "admin")


def _stores(config_file: Path | None):  # type: ignore[no-untyped-def]
    from edge.config import load_edge_config
    from edge.panel.audit import AuditLog
    from edge.panel.db import PanelDB
    from edge.panel.users import UserStore

    cfg = load_edge_config(config_file)
    db = PanelDB(cfg.panel.resolved_db(cfg.device.data_dir))
    return db, UserStore(db), AuditLog(db)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group("user")
def user_group() -> None:
    """Panel accounts (operator, qa, supervisor, admin). Run on the node's console."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="what the account may do")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin (scripts)")
@CONFIG_OPTION
def user_add(username: str, role: str, password_stdin: bool, config_file: Path | None) -> None:
    """Create account USERNAME. Admin accounts must then enrol TOTP with 'user totp'."""
    from edge.panel.users import Role

    db, users, audit = _stores(config_file)
    try:
        user = users.add(username, Role(role), _read_password(password_stdin))
        audit.record("console", "user.add", user.username, detail=role)
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        db.close()
    click.echo(f"created {user.username} ({user.role.value})")
    if user.role is Role.ADMIN:
        click.echo(f"next: dockgate edge user totp {user.username}  (admins need two-factor)")


@user_group.command("list")
@CONFIG_OPTION
def user_list(config_file: Path | None) -> None:
    """List accounts with their role and whether TOTP is enrolled."""
    db, users, _ = _stores(config_file)
    try:
        for u in users.all():
            flags = ("totp " if u.totp_enabled else "") + ("disabled" if u.disabled else "")
            click.echo(f"{u.username:<24} {u.role.value:<11} {flags.strip()}")
    finally:
        db.close()


@user_group.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin (scripts)")
@CONFIG_OPTION
def user_passwd(username: str, password_stdin: bool, config_file: Path | None) -> None:
    """Set a new password for USERNAME; their open sessions end."""
    db, users, audit = _stores(config_file)
    try:
        users.set_password(username, _read_password(password_stdin))
        audit.record("console", "user.passwd", username)
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        db.close()
    click.echo(f"password changed for {username}")


@user_group.command("totp")
@click.argument("username")
@CONFIG_OPTION
def user_totp(username: str, config_file: Path | None) -> None:
    """Enrol (or re-enrol) TOTP two-factor for USERNAME and print the secret once."""
    import pyotp

    db, users, audit = _stores(config_file)
    try:
        secret = users.enable_totp(username)
        audit.record("console", "user.totp", username)
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        db.close()
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="Dockgate")
    click.echo("Enter this secret in an authenticator app (shown only now):")
    click.echo(f"  secret: {secret}")
    click.echo(f"  uri:    {uri}")


@click.command("panel")
@CONFIG_OPTION
@click.option("--port", type=int, default=None, help="override panel.port")
def panel_command(config_file: Path | None, port: int | None) -> None:
    """Serve the operator's web panel (panel.host:panel.port; HTTPS when panel.tls_* is set)."""
    from edge.config import load_edge_config
    from edge.panel.server import serve

    try:
        cfg = load_edge_config(config_file)
    except DockgateError as exc:
        raise click.ClickException(f"config error: {exc.message}") from None
    panel = cfg.panel if port is None else cfg.panel.model_copy(update={"port": port})
    scheme = "https" if panel.tls else "http"
    click.echo(f"panel on {scheme}://{panel.host}:{panel.port}/ (Ctrl-C to stop)")
    serve(cfg, panel)
