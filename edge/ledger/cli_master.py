"""``dockgate ledger`` master-data commands: SKUs, locations, suppliers."""

from __future__ import annotations

import click

from edge.ledger.cli import _actor_only, _json_opt, _Opts, _run, _table, app, pass_opts
from edge.ledger.masterdata import ZONES


# master data ----------------------------------------------------------------------------
@app.group()
def sku() -> None:
    """SKU master data: add or update SKUs (GTIN, case size, safety stock), list them."""


@sku.command(name="add")
@click.option("--sku", "code", required=True, help="SKU code.")
@click.option("--gtin", help="GTIN-8/12/13/14 (check digit verified).")
@click.option("--name", default="", help="Description.")
@click.option("--base-unit", default="EA", show_default=True, help="Base unit of measure.")
@click.option("--case-qty", type=click.IntRange(1), help="Base units per case (unit CS).")
@click.option("--safety-stock", type=click.IntRange(0), default=0, show_default=True)
@_actor_only
@pass_opts
def sku_add(
    opts: _Opts,
    code: str,
    gtin: str | None,
    name: str,
    base_unit: str,
    case_qty: int | None,
    safety_stock: int,
    actor: str,
) -> None:
    """Add or update a SKU."""
    _run(
        opts,
        lambda led: led.add_sku(
            code,
            gtin=gtin,
            name=name,
            base_unit=base_unit,
            case_qty=case_qty,
            safety_stock=safety_stock,
            actor=actor,
        ),
    )


@sku.command(name="list")
@_json_opt
@pass_opts
def sku_list(opts: _Opts, as_json: bool) -> None:
    """List SKUs with GTIN, base unit, safety stock and unit conversions."""
    with opts.open() as led:
        rows = led.conn.execute(
            "SELECT k.sku, k.gtin, k.name, k.base_unit, k.safety_stock, "
            "(SELECT group_concat(unit || '=' || factor, ' ') FROM units u WHERE u.sku = k.sku) "
            "FROM skus k ORDER BY k.sku"
        ).fetchall()
    _table(
        "SKUs",
        ["sku", "gtin", "name", "base_unit", "safety_stock", "units"],
        [list(r) for r in rows],
        as_json,
    )


@app.group()
def location() -> None:
    """Location master data: zones (inbound, storage, forward, quarantine, outbound) and rank."""


@location.command(name="add")
@click.option("--code", required=True, help="Location code.")
@click.option("--zone", type=click.Choice(ZONES), required=True, help="Zone.")
@click.option(
    "--rank",
    type=click.IntRange(0),
    default=100,
    show_default=True,
    help="Distance from the outbound dock (lower = nearer).",
)
@_actor_only
@pass_opts
def location_add(opts: _Opts, code: str, zone: str, rank: int, actor: str) -> None:
    """Add or change a location."""
    _run(opts, lambda led: led.add_location(code, zone, rank=rank, actor=actor))


@location.command(name="list")
@_json_opt
@pass_opts
def location_list(opts: _Opts, as_json: bool) -> None:
    """List locations with zone and rank."""
    with opts.open() as led:
        rows = led.conn.execute("SELECT code, zone, rank FROM locations ORDER BY zone, rank, code")
        data = [list(r) for r in rows.fetchall()]
    _table("Locations", ["code", "zone", "rank"], data, as_json)


@app.command(name="supplier-add")
@click.option("--code", required=True, help="Supplier code.")
@click.option("--name", default="", help="Supplier name.")
@_actor_only
@pass_opts
def supplier_add(opts: _Opts, code: str, name: str, actor: str) -> None:
    """Add or rename a supplier."""
    _run(opts, lambda led: led.add_supplier(code, name=name, actor=actor))
