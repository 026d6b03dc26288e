"""``dockgate ledger`` booking and master-data commands (registered on the group in cli.py)."""

from __future__ import annotations

import click

from edge.ledger.cli import (
    _actor_only,
    _actor_opt,
    _json_opt,
    _lot,
    _Opts,
    _qty,
    _run,
    _sku,
    _table,
    _unit,
    app,
    pass_opts,
)
from edge.ledger.masterdata import ZONES


@app.command()
@_sku
@_lot
@_qty
@_unit
@click.option("--expiry", help="Expiry date YYYY-MM-DD (last sellable day).")
@click.option("--location", default="INBOUND", show_default=True, help="Where it was received.")
@click.option("--supplier", help="Supplier code.")
@_actor_opt
@pass_opts
def receive(
    opts: _Opts,
    sku: str,
    lot: str,
    qty: int,
    unit: str | None,
    expiry: str | None,
    location: str,
    supplier: str | None,
    actor: str,
    event_id: str | None,
) -> None:
    """Book a receipt (inbound goods) into the inbound dock or --location."""
    _run(
        opts,
        lambda led: led.receive(
            sku,
            lot,
            qty,
            unit=unit,
            expiry=expiry,
            location=location,
            supplier=supplier,
            actor=actor,
            event_id=event_id,
        ),
    )


@app.command()
@_sku
@_lot
@_qty
@_unit
@click.option(
    "--from", "from_location", default="INBOUND", show_default=True, help="From location."
)
@click.option("--to", help="Target location (default: the suggested putaway slot).")
@_actor_opt
@pass_opts
def putaway(
    opts: _Opts,
    sku: str,
    lot: str,
    qty: int,
    unit: str | None,
    from_location: str,
    to: str | None,
    actor: str,
    event_id: str | None,
) -> None:
    """Move received stock into storage (the ledger suggests a slot when --to is not given)."""
    _run(
        opts,
        lambda led: led.putaway(
            sku,
            lot,
            qty,
            unit=unit,
            from_location=from_location,
            to=to,
            actor=actor,
            event_id=event_id,
        ),
    )


@app.command()
@_sku
@_lot
@_qty
@_unit
@click.option("--from", "from_location", required=True, help="From location.")
@click.option("--to", required=True, help="To location.")
@_actor_opt
@pass_opts
def transfer(
    opts: _Opts,
    sku: str,
    lot: str,
    qty: int,
    unit: str | None,
    from_location: str,
    to: str,
    actor: str,
    event_id: str | None,
) -> None:
    """Move stock between two locations (frozen batches only into quarantine)."""
    _run(
        opts,
        lambda led: led.transfer(
            sku,
            lot,
            qty,
            unit=unit,
            from_location=from_location,
            to=to,
            actor=actor,
            event_id=event_id,
        ),
    )


@app.command()
@_sku
@_lot
@_qty
@_unit
@click.option("--from", "from_location", required=True, help="Location picked from.")
@click.option("--to", default="OUTBOUND", show_default=True, help="Outbound staging location.")
@click.option("--override-reason", help="Supervisor's reason for breaking FEFO order.")
@click.option("--supervisor", help="Supervisor approving the override, e.g. user:lee.")
@_actor_opt
@pass_opts
def pick(
    opts: _Opts,
    sku: str,
    lot: str,
    qty: int,
    unit: str | None,
    from_location: str,
    to: str,
    override_reason: str | None,
    supervisor: str | None,
    actor: str,
    event_id: str | None,
) -> None:
    """Pick stock for an order; refused if an earlier-expiring batch is available (FEFO),
    frozen or inside the expiry block window."""
    _run(
        opts,
        lambda led: led.pick(
            sku,
            lot,
            qty,
            unit=unit,
            from_location=from_location,
            to=to,
            override_reason=override_reason,
            supervisor=supervisor,
            actor=actor,
            event_id=event_id,
        ),
    )


@app.command()
@_sku
@_lot
@_qty
@_unit
@click.option("--from", "from_location", default="OUTBOUND", show_default=True, help="Location.")
@_actor_opt
@pass_opts
def ship(
    opts: _Opts,
    sku: str,
    lot: str,
    qty: int,
    unit: str | None,
    from_location: str,
    actor: str,
    event_id: str | None,
) -> None:
    """Ship stock out of the warehouse."""
    _run(
        opts,
        lambda led: led.ship(
            sku, lot, qty, unit=unit, from_location=from_location, actor=actor, event_id=event_id
        ),
    )


@app.command(name="return")
@_sku
@_lot
@_qty
@_unit
@click.option("--from", "from_location", required=True, help="Location.")
@click.option("--supplier", required=True, help="Supplier code.")
@click.option("--reason", required=True, help="Why it goes back.")
@_actor_opt
@pass_opts
def return_(
    opts: _Opts,
    sku: str,
    lot: str,
    qty: int,
    unit: str | None,
    from_location: str,
    supplier: str,
    reason: str,
    actor: str,
    event_id: str | None,
) -> None:
    """Return stock to its supplier (allowed for frozen batches)."""
    _run(
        opts,
        lambda led: led.return_to_supplier(
            sku,
            lot,
            qty,
            unit=unit,
            supplier=supplier,
            from_location=from_location,
            reason=reason,
            actor=actor,
            event_id=event_id,
        ),
    )


@app.command()
@_sku
@_lot
@click.option("--location", required=True, help="Location.")
@click.option("--delta", type=int, required=True, help="Change in base units (+/-).")
@click.option("--reason", required=True, help="Why (damage, found, ...).")
@_actor_opt
@pass_opts
def adjust(
    opts: _Opts,
    sku: str,
    lot: str,
    location: str,
    delta: int,
    reason: str,
    actor: str,
    event_id: str | None,
) -> None:
    """Correct a stock position by --delta base units, with a reason."""
    _run(
        opts,
        lambda led: led.adjust(
            sku, lot, location, delta, reason=reason, actor=actor, event_id=event_id
        ),
    )


@app.command()
@_sku
@_lot
@click.option("--location", required=True, help="Location counted.")
@click.option("--counted", type=int, required=True, help="Quantity found (base units).")
@_actor_opt
@pass_opts
def count(
    opts: _Opts, sku: str, lot: str, location: str, counted: int, actor: str, event_id: str | None
) -> None:
    """Record a cycle count: the position becomes --counted and the difference is kept."""
    _run(
        opts,
        lambda led: led.cycle_count(sku, lot, location, counted, actor=actor, event_id=event_id),
    )


@app.command()
@_sku
@_lot
@click.option("--reason", required=True, help="Why the batch is frozen.")
@_actor_opt
@pass_opts
def freeze(opts: _Opts, sku: str, lot: str, reason: str, actor: str, event_id: str | None) -> None:
    """QA-freeze a batch: it cannot be picked, shipped or moved out of quarantine."""
    _run(opts, lambda led: led.freeze(sku, lot, reason=reason, actor=actor, event_id=event_id))


@app.command()
@_sku
@_lot
@click.option("--reason", required=True, help="Why the freeze is lifted.")
@_actor_opt
@pass_opts
def release(opts: _Opts, sku: str, lot: str, reason: str, actor: str, event_id: str | None) -> None:
    """Lift a QA freeze on a batch."""
    _run(opts, lambda led: led.release(sku, lot, reason=reason, actor=actor, event_id=event_id))


@app.command()
@click.option("--hold", required=True, help="Hold id of the carton (its lot under UNIDENTIFIED).")
@_sku
@_lot
@click.option("--expiry", help="Expiry date YYYY-MM-DD.")
@click.option("--to", help="Location to move it to (default: stays where it is).")
@_actor_opt
@pass_opts
def identify(
    opts: _Opts,
    hold: str,
    sku: str,
    lot: str,
    expiry: str | None,
    to: str | None,
    actor: str,
    event_id: str | None,
) -> None:
    """Identify a held (unreadable) carton: book it into its real SKU and lot."""
    _run(
        opts,
        lambda led: led.identify(
            hold, sku=sku, lot=lot, expiry=expiry, to=to, actor=actor, event_id=event_id
        ),
    )


@app.command(name="expiry-sweep")
@click.option("--actor", default="device:ledger", show_default=True, help="Who books the blocks.")
@pass_opts
def expiry_sweep(opts: _Opts, actor: str) -> None:
    """Expiry-block every batch with stock inside the block window (run daily)."""
    with opts.open() as led:
        done = led.block_expiring(actor=actor)
    click.echo(f"blocked {len(done)} batches: {', '.join(r.event.payload['lot'] for r in done)}")


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
