"""``dockgate ledger``: an operator's session, and verify's output and exit codes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from edge.cli import cli
from edge.contracts.errors import DockgateError, ErrorCode


def run(db: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["ledger", "--db", str(db), "--device", "edge-09", *args])


def test_operator_session(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    steps = [
        [
            "sku",
            "add",
            "--sku",
            "tea-1",
            "--gtin",
            "4006381333931",
            "--case-qty",
            "12",
            "--safety-stock",
            "5",
        ],
        ["location", "add", "--code", "A-01", "--zone", "storage", "--rank", "3"],
        ["supplier-add", "--code", "SUP-1", "--name", "Tea Co"],
        [
            "receive",
            "--sku",
            "TEA-1",
            "--lot",
            "L1",
            "--qty",
            "2",
            "--unit",
            "CS",
            "--expiry",
            "2030-01-31",
            "--supplier",
            "sup-1",
            "--actor",
            "user:anna",
        ],
        ["putaway", "--sku", "TEA-1", "--lot", "L1", "--qty", "24"],
        ["pick", "--sku", "TEA-1", "--lot", "L1", "--qty", "20", "--from", "A-01"],
        ["ship", "--sku", "TEA-1", "--lot", "L1", "--qty", "20"],
        ["count", "--sku", "TEA-1", "--lot", "L1", "--location", "A-01", "--counted", "3"],
        ["freeze", "--sku", "TEA-1", "--lot", "L1", "--reason", "customer complaint"],
    ]
    for step in steps:
        result = run(db, *step)
        assert result.exit_code == 0, (step, result.output, result.exception)
        assert "booked: seq" in result.output
    out = run(db, "stock").output
    assert "TEA-1" in out and "A-01" in out and "True" in out
    history = run(db, "history", "--batch", "l1").output
    for kind in ("receipt", "putaway", "pick", "ship", "cycle-count", "qa-freeze"):
        assert kind in history
    kpis = run(db, "kpis", "--json")
    assert '"shipped_units": 20' in kpis.output
    assert "TEA-1" in run(db, "sku", "list").output
    assert "pending 11" in run(db, "outbox").output  # 9 bookings + CS unit + 1 alert
    assert run(db, "batches").exit_code == 0
    verify = run(db, "verify")
    assert verify.exit_code == 0 and verify.output.strip() == "OK 11 events"


def test_refusal_carries_its_code(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    run(db, "sku", "add", "--sku", "TEA-1")
    result = run(db, "ship", "--sku", "TEA-1", "--lot", "L1", "--qty", "1")
    assert isinstance(result.exception, DockgateError)
    assert result.exception.code == ErrorCode.NEGATIVE_STOCK


def test_verify_names_the_broken_link_and_fails(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    run(db, "sku", "add", "--sku", "TEA-1")
    run(db, "receive", "--sku", "TEA-1", "--lot", "L1", "--qty", "5")
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET payload = replace(payload, '5', '6') WHERE seq = 2")
    conn.commit()
    conn.close()
    result = run(db, "verify")
    assert result.exit_code == 1
    assert result.output.startswith("BROKEN at seq 2 event ")
    assert "expected hash" in result.output and "found" in result.output


@pytest.mark.parametrize("args", [["history"], ["stock", "--bogus"]])
def test_usage_errors(tmp_path: Path, args: list[str]) -> None:
    assert run(tmp_path / "l.db", *args).exit_code == 2


def test_db_from_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.toml"
    cfg.write_text(f'[device]\nid = "edge-33"\ndata_dir = "{tmp_path}"\n')
    result = CliRunner().invoke(cli, ["ledger", "--config", str(cfg), "outbox"])
    assert result.exit_code == 0, result.output
    from edge.ledger.db import stored_device_id

    assert stored_device_id(tmp_path / "ledger.db") == "edge-33"


def test_hold_identify_and_events(tmp_path: Path) -> None:
    import json

    db = tmp_path / "ledger.db"
    run(db, "sku", "add", "--sku", "TEA-1")
    held = run(db, "hold", "--raw", "(01)0400?")
    assert held.exit_code == 0, held.output
    hold_id = held.output.split()[4].split("/")[1]  # "booked: seq 2 hold UNIDENTIFIED/H... id"
    ok = run(db, "identify", "--hold", hold_id, "--sku", "TEA-1", "--lot", "L7")
    assert ok.exit_code == 0, ok.output
    lines = run(db, "events", "--after", "1").output.splitlines()
    assert [json.loads(ln)["kind"] for ln in lines] == ["hold", "identify"]
    assert "L7" in run(db, "stock", "--location", "QUARANTINE").output


def test_backup_is_a_verifiable_private_copy(tmp_path: Path) -> None:
    import stat

    from edge.ledger import Ledger

    db = tmp_path / "ledger.db"
    run(db, "sku", "add", "--sku", "TEA-1")
    run(db, "receive", "--sku", "TEA-1", "--lot", "L1", "--qty", "5")
    copy = tmp_path / "copy.db"
    result = run(db, "backup", str(copy))
    assert result.exit_code == 0 and "backed up 2 events" in result.output
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with Ledger.open(copy, "edge-09") as led:
        assert led.verify().ok and led.stock()[0].qty == 5
    again = run(db, "backup", str(copy))
    assert isinstance(again.exception, DockgateError)  # never overwrites
