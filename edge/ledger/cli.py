"""``dockgate ledger``: check, query and book into the stock ledger without the panel.

Every command opens the ledger named by ``--db`` (or the config's ``ledger.path``), does one
thing and closes it. Refusals print one line with a stable code (exit 2); ``verify`` exits 1 on
a broken chain or projection.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from edge.config import load_edge_config
from edge.ledger.api import Ledger
from edge.ledger.db import stored_device_id
from edge.ledger.ledger import AppendResult


@dataclasses.dataclass
class _Opts:
    db: Path | None
    config: Path | None
    device: str | None

    def open(self) -> Ledger:
        cfg = load_edge_config(self.config)
        path = self.db or cfg.ledger.resolved_path(cfg.device)
        device = self.device or stored_device_id(path) or cfg.device.id
        return Ledger.open(
            path,
            device,
            expiry_warning_days=cfg.ledger.expiry_warning_days,
            expiry_block_days=cfg.ledger.expiry_block_days,
            synchronous=cfg.ledger.synchronous,
            max_size_mb=cfg.ledger.max_size_mb,
            utc_offset_minutes=cfg.ledger.utc_offset_minutes,
        )


pass_opts = click.make_pass_decorator(_Opts)


def _default_actor() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", getpass.getuser() or "operator")[:64]
    return f"user:{name}"


@click.group(name="ledger")
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False), help="Ledger file.")
@click.option(
    "--config", type=click.Path(path_type=Path, dir_okay=False), help="Edge config TOML file."
)
@click.option("--device", help="Device id for a new ledger file (default: from the config).")
@click.pass_context
def app(ctx: click.Context, db: Path | None, config: Path | None, device: str | None) -> None:
    """The edge stock ledger: verify the hash chain, show stock and batch history, key figures,
    and book receipts, picks, freezes and other movements by hand.

    The ledger file comes from --db, else from the config's ledger.path (default
    <device.data_dir>/ledger.db).
    """
    ctx.obj = _Opts(db, config, device)


def _run(opts: _Opts, work: Callable[[Ledger], AppendResult]) -> None:
    with opts.open() as led:
        result = work(led)
    event = result.event
    state = "already booked (same event id)" if result.duplicate else "booked"
    lot = f" {event.payload['sku']}/{event.payload['lot']}" if "lot" in event.payload else ""
    click.echo(f"{state}: seq {event.seq} {event.kind}{lot} {event.id}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for alert in result.alerts:
        click.echo(f"alert: {alert.payload.get('code')} {json.dumps(alert.payload)}", err=True)


def _table(title: str, columns: list[str], rows: list[list[Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], indent=1))
        return
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col in ("qty", "seq") else "left")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    Console().print(table)


_json_opt = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def _actor_only(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--actor", default=_default_actor, show_default="user:<login>", help="Who books this."
    )(f)


def _actor_opt(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--event-id", help="Idempotency key (UUID): repeating it books nothing new.")(
        f
    )
    return _actor_only(f)


_sku = click.option("--sku", required=True, help="SKU code.")
_lot = click.option("--lot", "--batch", "lot", required=True, help="Lot / batch code.")
_qty = click.option("--qty", type=int, required=True, help="Quantity (base units unless --unit).")
_unit = click.option("--unit", help="Unit of --qty, e.g. CS for cases.")


# integrity ------------------------------------------------------------------------------
@app.command()
@pass_opts
def verify(opts: _Opts) -> None:
    """Walk the hash chain and compare the stock table with a replay of the log.

    Prints 'OK <n> events' or the first broken link (event id, expected and found hash);
    exits 1 when anything is wrong.
    """
    with opts.open() as led:
        report = led.verify()
    click.echo(report.summary())
    if not report.ok:
        raise SystemExit(1)


@app.command()
@pass_opts
def rebuild(opts: _Opts) -> None:
    """Recompute the stock and batch tables from the event log (after a PROJECTION_MISMATCH)."""
    with opts.open() as led:
        rows = led.rebuild_projection()
    click.echo(f"rebuilt: {rows} stock positions")


@app.command()
@click.argument("dest", type=click.Path(path_type=Path, dir_okay=False))
@pass_opts
def backup(opts: _Opts, dest: Path) -> None:
    """Write a consistent copy of the ledger to DEST (safe while the node runs; mode 0600)."""
    with opts.open() as led:
        led.backup(dest)
        count = led.head()[0]
    click.echo(f"backed up {count} events to {dest}")


# queries --------------------------------------------------------------------------------
@app.command()
@click.option("--sku", help="Only this SKU.")
@click.option("--lot", "--batch", "lot", help="Only this lot / batch.")
@click.option("--location", help="Only this location.")
@_json_opt
@pass_opts
def stock(
    opts: _Opts, sku: str | None, lot: str | None, location: str | None, as_json: bool
) -> None:
    """Show stock positions (sku, lot, location) with quantity, expiry and freeze status."""
    with opts.open() as led:
        rows = led.stock(sku=sku, lot=lot, location=location)
    cols = ["sku", "lot", "location", "zone", "qty", "expiry", "frozen"]
    data = [[r.sku, r.lot, r.location, r.zone, r.qty, r.expiry, r.frozen] for r in rows]
    _table("Stock", cols, data, as_json)


@app.command()
@click.option("--sku", help="Only this SKU.")
@_json_opt
@pass_opts
def batches(opts: _Opts, sku: str | None, as_json: bool) -> None:
    """List batches in FEFO order (earliest expiry first) with status and quantity."""
    with opts.open() as led:
        rows = led.batches(sku)
    cols = ["sku", "lot", "expiry", "qty", "frozen", "freeze_reason", "expiry_blocked"]
    data = [
        [b.sku, b.lot, b.expiry, b.qty, b.frozen, b.freeze_reason, b.expiry_blocked] for b in rows
    ]
    _table("Batches (FEFO order)", cols, data, as_json)


@app.command()
@click.option("--batch", "--lot", "lot", help="Lot / batch code.")
@click.option("--sku", help="SKU code.")
@click.option("--event-id", help="One event id.")
@_json_opt
@pass_opts
def history(
    opts: _Opts, lot: str | None, sku: str | None, event_id: str | None, as_json: bool
) -> None:
    """Show every event about a batch (or SKU, or one event id), oldest first."""
    if not (lot or sku or event_id):
        raise click.UsageError("give --batch, --sku or --event-id")
    with opts.open() as led:
        events = led.history(lot=lot, sku=sku, event_id=event_id)
    cols = ["seq", "ts", "kind", "actor", "details"]
    data = [
        [e.seq, e.ts, e.kind, e.actor, json.dumps(e.payload, ensure_ascii=False)] for e in events
    ]
    _table(f"History {lot or sku or event_id}", cols, data, as_json)


@app.command()
@click.option("--period-days", type=click.IntRange(1, 3650), default=365, show_default=True)
@click.option("--old-days", type=click.IntRange(1, 3650), default=90, show_default=True)
@_json_opt
@pass_opts
def kpis(opts: _Opts, period_days: int, old_days: int, as_json: bool) -> None:
    """Key figures: stock turnover, count discrepancy rate, share of old stock, SKUs below
    safety stock."""
    with opts.open() as led:
        k = led.kpis(period_days=period_days, old_days=old_days)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(k), indent=1))
        return
    rows: list[list[Any]] = [
        [
            f"stock turnover ({period_days} d)",
            "n/a" if k.stock_turnover is None else f"{k.stock_turnover:.2f}",
        ],
        [f"units shipped ({period_days} d)", k.shipped_units],
        [f"count discrepancy rate ({k.cycle_counts} counts)", _pct(k.count_discrepancy_rate)],
        [f"stock older than {old_days} d", _pct(k.share_old_stock)],
        [
            "SKUs below safety stock",
            ", ".join(f"{s} ({a}/{m})" for s, a, m in k.below_safety_stock) or "none",
        ],
    ]
    _table("Ledger KPIs", ["figure", "value"], rows, False)


@app.command()
@click.option("--after", type=click.IntRange(0), default=0, show_default=True, help="After seq.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@pass_opts
def events(opts: _Opts, after: int, limit: int) -> None:
    """Print events after a sequence number as JSON lines (for maintainers and scripts)."""
    with opts.open() as led:
        rows = led.events(after, limit)
    for e in rows:
        click.echo(json.dumps(e.to_dict(), ensure_ascii=False, sort_keys=True))


def _details(payload: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v if isinstance(v, str | int) else json.dumps(v, ensure_ascii=False)}"
        for k, v in payload.items()
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


@app.command()
@pass_opts
def outbox(opts: _Opts) -> None:
    """Show how many events wait for the cloud, the oldest, and how many are still unsigned."""
    with opts.open() as led:
        s = led.outbox_stats()
    click.echo(f"pending {s.pending} (unsigned {s.unsigned}), oldest {s.oldest_ts or '-'}")


# booking and master-data commands live in their own module; importing it registers them
import edge.ledger.cli_book  # noqa: E402
import edge.ledger.cli_master  # noqa: E402, F401
