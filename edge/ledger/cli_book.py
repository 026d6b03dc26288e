"""``dockgate ledger`` booking and master-data commands (registered on the group in cli.py)."""

from __future__ import annotations

import click

from edge.ledger.cli import (
    _actor_opt,
    _lot,
    _Opts,
    _qty,
    _run,
    _sku,
    _unit,
    app,
    pass_opts,
)


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
@click.option("--qty", type=click.IntRange(1), default=1, show_default=True, help="Base units.")
@click.option("--raw", help="What could be read of the label, if anything.")
@click.option("--reason", default="code unreadable", show_default=True, help="Why it is held.")
@click.option("--location", help="Quarantine location (default: the suggested one).")
@_actor_opt
@pass_opts
def hold(
    opts: _Opts,
    qty: int,
    raw: str | None,
    reason: str,
    location: str | None,
    actor: str,
    event_id: str | None,
) -> None:
    """Hold a carton whose code cannot be read in quarantine; prints its hold id for 'identify'."""
    _run(
        opts,
        lambda led: led.hold_unidentified(
            qty, raw=raw, reason=reason, location=location, actor=actor, event_id=event_id
        ),
    )


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
