"""``dockgate cloud``: the fleet CA, the service, tokens, revocation, people, the trust bundle,
training datasets."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from cloud.config import CloudConfig, load_cloud_config
from cloud.deps import Services
from edge.contracts.errors import DockgateError

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    envvar="DOCKGATE_CLOUD_CONFIG",
    help="cloud TOML config (default: built-in defaults + DOCKGATE_CLOUD_* variables)",
)


def _config(path: Path | None) -> CloudConfig:
    try:
        return load_cloud_config(path)
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@click.group(name="cloud")
def app() -> None:
    """The cloud service: fleet CA, ingest API, device tokens and revocation, people."""


@app.group("ca")
def ca_group() -> None:
    """The fleet certificate authority (offline root, issuing intermediate)."""


@ca_group.command("init")
@click.option(
    "--dir",
    "ca_dir",
    type=click.Path(path_type=Path),
    default=Path("data/cloud/ca"),
    show_default=True,
    help="where root/ and issuing/ are created",
)
@click.option("--org", required=True, help="organisation name put in the CA certificates")
def ca_init(ca_dir: Path, org: str) -> None:
    """Create the root key+certificate (mode 0600; keep root/ offline) and the issuing CA."""
    from cloud.services.ca import init_ca

    try:
        chain = init_ca(ca_dir, org)
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"root:    {ca_dir / 'root'}  (move offline; the service never reads it)")
    click.echo(f"issuing: {ca_dir / 'issuing'}  (issuing_dir of the cloud config)")
    click.echo(f"chain:   {chain}")


@app.command("migrate")
@config_option
def migrate_cmd(config_path: Path | None) -> None:
    """Apply pending database migrations (Alembic) and exit."""
    svc = Services.from_config(_config(config_path))
    svc.close()
    click.echo("database at head")


@app.command("serve")
@config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(config_path: Path | None, host: str, port: int, workers: int) -> None:
    """Run the HTTP API (uvicorn). Several workers need a PostgreSQL database_url."""
    import uvicorn

    cfg = _config(config_path)
    Services.from_config(cfg).close()  # migrate once, before workers start
    if config_path is not None:
        os.environ["DOCKGATE_CLOUD_CONFIG"] = str(config_path)
    uvicorn.run(
        "cloud.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@app.group("token")
def token_group() -> None:
    """One-time device enrollment tokens."""


@token_group.command("create")
@config_option
@click.option("--org", required=True)
@click.option("--site", required=True)
@click.option("--device", "device_id", default=None, help="pin the token to this device id")
@click.option("--ttl-hours", default=24.0, show_default=True, type=click.FloatRange(0.01, 720))
def token_create(
    config_path: Path | None, org: str, site: str, device_id: str | None, ttl_hours: float
) -> None:
    """Print a new one-time enrollment token (only its hash is stored)."""
    from cloud.services.registry import create_token

    svc = Services.from_config(_config(config_path))
    try:
        with svc.sessions.begin() as s:
            token = create_token(s, _actor(), org, site, device_id, dt.timedelta(hours=ttl_hours))
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        svc.close()
    click.echo(token)


@app.group("device")
def device_group() -> None:
    """Enrolled devices."""


@device_group.command("revoke")
@config_option
@click.argument("device_id")
def device_revoke(config_path: Path | None, device_id: str) -> None:
    """Refuse DEVICE_ID's new submissions; what it sent before stays valid and visible."""
    from cloud.services.registry import revoke

    svc = Services.from_config(_config(config_path))
    try:
        with svc.sessions.begin() as s:
            dev = revoke(s, _actor(), device_id)
            click.echo(
                f"{dev.id} revoked (events through seq {dev.revoked_through_seq} stay valid)"
            )
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        svc.close()


@app.group("user")
def user_group() -> None:
    """People who use the cloud console and API."""


@user_group.command("add")
@config_option
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["viewer", "operator", "qa", "admin", "labeler"]),
    required=True,
    help="labeler: may only label training samples",
)
@click.password_option(envvar="DOCKGATE_CLOUD_PASSWORD", help="at least 10 characters")
def user_add(config_path: Path | None, username: str, role: str, password: str) -> None:
    """Create an account; admins get a TOTP secret to put in an authenticator app."""
    import pyotp

    from cloud.auth import add_user

    svc = Services.from_config(_config(config_path))
    try:
        with svc.sessions.begin() as s:
            secret = add_user(s, _actor(), username, role, password)
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        svc.close()
    click.echo(f"{username} ({role}) created")
    if secret:
        uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="Dockgate")
        click.echo(f"TOTP secret (shown once): {secret}\n{uri}")


@app.command("trust-bundle")
@config_option
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True)
def trust_bundle(config_path: Path | None, output: Path) -> None:
    """Write the CA chain, device certificates and revocations for 'dockgate verify'."""
    from cloud.db.models import Device, DeviceCert

    svc = Services.from_config(_config(config_path))
    try:
        issuer = svc.require_issuer()
        with svc.sessions() as s:
            certs = [c.cert_pem for c in s.execute(select(DeviceCert)).scalars()]
            revoked = [
                {
                    "device_id": d.id,
                    "revoked_at": d.revoked_at.isoformat() if d.revoked_at else None,
                    "through_seq": d.revoked_through_seq or 0,
                }
                for d in s.execute(select(Device).where(Device.status == "revoked")).scalars()
            ]
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        svc.close()
    bundle = {"version": 1, "chain": issuer.chain_pem(), "devices": certs, "revoked": revoked}
    output.write_text(json.dumps(bundle, indent=1))
    click.echo(f"{output}: {len(certs)} certificates, {len(revoked)} revoked devices")


@app.group("dataset")
def dataset_group() -> None:
    """Versioned snapshots of the labeled samples, and their export for training."""


@dataset_group.command("create")
@config_option
@click.option(
    "--val-percent", default=10.0, show_default=True, type=click.FloatRange(0, 50),
    help="share of images in the validation split (stable: by the image's hash)",
)  # fmt: skip
@click.option(
    "--regression-percent", default=10.0, show_default=True, type=click.FloatRange(0, 50),
    help="share of new images frozen into the regression set (which only grows)",
)  # fmt: skip
@click.option("--note", default="", help="what this snapshot is for")
def dataset_create(
    config_path: Path | None, val_percent: float, regression_percent: float, note: str
) -> None:
    """Snapshot every currently labeled sample; prints the dataset id (the same members give
    the same id: nothing new, nothing created)."""
    from cloud.services import datasets

    svc = Services.from_config(_config(config_path))
    try:
        with svc.sessions.begin() as s:
            ds, created = datasets.create(s, _actor(), val_percent, regression_percent, note)
            line = _dataset_line(ds)
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        svc.close()
    click.echo(line if created else f"{line}  (unchanged: no new labels since)")


@dataset_group.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="one JSON object per dataset")
def dataset_list(config_path: Path | None, as_json: bool) -> None:
    """The snapshots, newest first: id, when, by whom, members per kind and split."""
    from cloud.services import datasets

    svc = Services.from_config(_config(config_path))
    try:
        with svc.sessions() as s:
            rows = datasets.listing(s)
            lines = [
                json.dumps(
                    {
                        "id": d.id,
                        "created_at": d.created_at.isoformat(),
                        "by": d.created_by,
                        "parent": d.parent,
                        "counts": d.counts,
                        "note": d.note,
                    }
                )
                if as_json
                else _dataset_line(d)
                for d in rows
            ]
    finally:
        svc.close()
    for line in lines:
        click.echo(line)


@dataset_group.command("export")
@config_option
@click.argument("dataset_id")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
def dataset_export(config_path: Path | None, dataset_id: str, out: Path) -> None:
    """Write DATASET_ID to the folder OUT (manifest.json, codes/<split>/, defects/<split>/<class>/;
    the format is in cloud/services/datasets.py). OUT must not exist or be empty."""
    from cloud.services import datasets
    from cloud.services.blobs import blob_store_for

    cfg = _config(config_path)
    svc = Services.from_config(cfg)
    try:
        with svc.sessions() as s:
            manifest = datasets.export(s, dataset_id, blob_store_for(cfg), out)
    except (DockgateError, FileExistsError) as exc:
        raise click.ClickException(str(getattr(exc, "message", exc))) from None
    finally:
        svc.close()
    click.echo(f"{out}: dataset {dataset_id}, {len(manifest['members'])} images")
    for kind in ("code", "defect"):
        counts = manifest["counts"].get(kind) or {}
        if counts:
            click.echo(f"  {kind}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def _dataset_line(d: Any) -> str:
    parts = []
    for kind in ("code", "defect"):
        counts = d.counts.get(kind) or {}
        if counts:
            parts.append(f"{kind} " + "/".join(f"{k}={v}" for k, v in sorted(counts.items())))
    when = d.created_at.strftime("%Y-%m-%d %H:%M")
    parent = f" after {d.parent}" if d.parent else ""
    return f"{d.id}  {when}  {d.created_by}  {'; '.join(parts)}{parent}"


@app.group("train")
def train_group() -> None:
    """Retraining jobs: train on a dataset snapshot, gate against production, release."""


def _params(pairs: tuple[str, ...]) -> dict[str, Any]:
    from cloud.services.training import parse_params

    try:
        return parse_params(" ".join(pairs))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--param") from None


@train_group.command("start")
@config_option
@click.argument("kind", type=click.Choice(["codes", "defect"]))
@click.argument("dataset_id")
@click.option("--param", "pairs", multiple=True, help="trainer setting KEY=VALUE (e.g. epochs=2)")
def train_start(
    config_path: Path | None, kind: str, dataset_id: str, pairs: tuple[str, ...]
) -> None:
    """Start a training job of KIND on DATASET_ID. With training_queue = inprocess the job runs
    here, in the foreground, with its progress; with procrastinate it is queued for a worker."""
    import time

    from cloud.services import training

    svc = Services.from_config(_config(config_path))
    queue = training.queue_for(svc)
    try:
        job = training.start(svc, queue, _actor(), kind, dataset_id, _params(pairs))
        click.echo(f"job {job.id}: {kind} on dataset {dataset_id}, queue {queue.name}")
        if isinstance(queue, training.InProcessQueue):
            shown = ""
            while True:
                with svc.reader() as s:
                    row = training.as_dict(training.get(s, job.id))
                line = f"  {row['stage']}" + (
                    f" {row['step']}/{row['total']}" if row["total"] else ""
                )
                if line != shown:
                    click.echo(line)
                    shown = line
                if row["status"] not in training.ACTIVE:
                    break
                time.sleep(1.0)
            click.echo(_job_line(row))
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        queue.close()
        svc.close()


@train_group.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="one JSON object per job")
def train_list(config_path: Path | None, as_json: bool) -> None:
    """Training jobs, newest first: id, model, dataset, status, stage and step."""
    from cloud.services import training

    svc = Services.from_config(_config(config_path))
    try:
        training.recover_stale(svc)  # a job whose process is gone is not shown running
        with svc.reader() as s:
            rows = [training.as_dict(j) for j in training.listing(s)]
    finally:
        svc.close()
    for row in rows:
        click.echo(json.dumps(row) if as_json else _job_line(row))


@train_group.command("show")
@config_option
@click.argument("job_id", type=click.IntRange(1, 2**31 - 1))
def train_show(config_path: Path | None, job_id: int) -> None:
    """One job as JSON: progress, candidate, the gate's figures, release and rollout."""
    from cloud.services import training

    svc = Services.from_config(_config(config_path))
    try:
        training.recover_stale(svc)
        with svc.reader() as s:
            row = training.as_dict(training.get(s, job_id))
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        svc.close()
    click.echo(json.dumps(row, indent=1))


@train_group.command("approve")
@config_option
@click.argument("job_id", type=click.IntRange(1, 2**31 - 1))
def train_approve(config_path: Path | None, job_id: int) -> None:
    """Start the canary rollout of a released candidate that awaits approval."""
    from cloud.services import publish

    svc = Services.from_config(_config(config_path))
    try:
        job = publish.approve(svc, job_id, _actor())
    except DockgateError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        svc.close()
    click.echo(f"job {job_id}: rollout {job.rollout_id} created")


@train_group.command("worker")
@config_option
@click.option("--once", is_flag=True, help="run the queued jobs, then exit")
def train_worker(config_path: Path | None, once: bool) -> None:
    """A procrastinate worker for training jobs (training_queue = procrastinate)."""
    from cloud.services import training

    cfg = _config(config_path)
    if cfg.training_queue != "procrastinate":
        raise click.ClickException("training_queue is not 'procrastinate': jobs run in-process")
    svc = Services.from_config(cfg)
    queue = training.ProcrastinateQueue(svc)
    try:
        queue.work(once=once)
    finally:
        queue.close()
        svc.close()


def _job_line(row: dict[str, Any]) -> str:
    step = f" {row['step']}/{row['total']}" if row["total"] else ""
    extra = f" {row['version']}" if row["version"] else ""
    extra += f" rollout {row['rollout_id']}" if row["rollout_id"] else ""
    why = f"  {row['reason']}" if row["reason"] else ""
    return (
        f"{row['id']}  {row['model']}  {row['dataset']}  {row['status']}  "
        f"{row['stage']}{step}{extra}{why}"
    )
