"""``dockgate edge user ...``: the only way to create accounts; no default password exists."""

from __future__ import annotations

import os
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.panel.db import PanelDB
from edge.panel.users import UserStore


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(f'[device]\ndata_dir = "{tmp_path / "data"}"\n')
    return path


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["edge", *args], input=stdin)
    return result.exit_code, result.output


def test_first_admin_is_created_on_the_console_with_totp(cfg: Path, tmp_path: Path) -> None:
    db_path = tmp_path / "data" / "panel.db"
    assert not db_path.exists()  # nothing, and so no default account, before the first 'add'
    code, out = run(
        "user",
        "add",
        "boss",
        "--role",
        "admin",
        "--password-stdin",
        "--config",
        str(cfg),
        stdin="a long enough secret\n",
    )
    assert code == 0, out
    assert "user totp boss" in out and "a long enough secret" not in out
    assert os.stat(db_path).st_mode & 0o777 == 0o600
    code, out = run("user", "totp", "boss", "--config", str(cfg))
    assert code == 0
    secret = out.split("secret:")[1].split()[0]
    db = PanelDB(db_path)
    try:
        users = UserStore(db)
        assert users.authenticate("boss", "a long enough secret", pyotp.TOTP(secret).now())
        assert [e.action for e in reversed(_audit(db))] == ["user.add", "user.totp"]
    finally:
        db.close()


def _audit(db: PanelDB) -> list:  # type: ignore[type-arg]
    from edge.panel.audit import AuditLog

    return AuditLog(db).recent()


def test_user_list_passwd_and_refusals(cfg: Path) -> None:
    assert (
        run(
            "user",
            "add",
            "li.na",
            "--role",
            "qa",
            "--password-stdin",
            "--config",
            str(cfg),
            stdin="first password 1\n",
        )[0]
        == 0
    )
    code, out = run(
        "user",
        "add",
        "li.na",
        "--role",
        "qa",
        "--password-stdin",
        "--config",
        str(cfg),
        stdin="first password 1\n",
    )
    assert code != 0 and "already exists" in out
    code, out = run(
        "user",
        "add",
        "wang",
        "--role",
        "operator",
        "--password-stdin",
        "--config",
        str(cfg),
        stdin="short\n",
    )
    assert code != 0 and "password must be" in out
    code, out = run("user", "add", "x", "--role", "boss", "--config", str(cfg))
    assert code != 0
    code, out = run("user", "list", "--config", str(cfg))
    assert code == 0 and "li.na" in out and "qa" in out
    code, out = run(
        "user",
        "passwd",
        "li.na",
        "--password-stdin",
        "--config",
        str(cfg),
        stdin="second password 2\n",
    )
    assert code == 0
    code, out = run(
        "user",
        "passwd",
        "nobody",
        "--password-stdin",
        "--config",
        str(cfg),
        stdin="second password 2\n",
    )
    assert code != 0 and "no user" in out


def test_interactive_password_is_not_echoed(cfg: Path) -> None:
    code, out = run(
        "user",
        "add",
        "zhao",
        "--role",
        "operator",
        "--config",
        str(cfg),
        stdin="hidden password 9\nhidden password 9\n",
    )
    assert code == 0 and "hidden password 9" not in out


def test_panel_command_has_help() -> None:
    code, out = run("panel", "--help")
    assert code == 0 and "--port" in out
    code, out = run("user", "--help")
    assert code == 0 and all(c in out for c in ("add", "list", "passwd", "totp"))
