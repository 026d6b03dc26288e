"""``dockgate ota``: sign and stage model releases (release server side)."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click

DEFAULT_DIR = Path("data/cloud/ota")
_dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_DIR,
    show_default=True,
    help="release repository directory (served by the cloud under /ota/)",
)


def _dockgate_version() -> str:
    try:
        return version("dockgate")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


@click.group(name="ota")
def app() -> None:
    """Signed model releases (The Update Framework): keys, releases, rollbacks."""


@app.group()
def keys() -> None:
    """Release signing keys (separate from the device CA)."""


@keys.command("init")
@_dir_option
@click.option(
    "--root-key",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="where to write the root key; default DIR/../ota-root-key-MOVE-OFFLINE/root.key",
)
def keys_init(directory: Path, root_key: Path | None) -> None:
    """Create root/targets/snapshot/timestamp keys (Ed25519, 0600) and signed metadata."""
    from ota.repo import Repository

    root_key = root_key or directory.parent / "ota-root-key-MOVE-OFFLINE" / "root.key"
    repo = Repository.init(directory, root_key)
    click.echo(f"repository: {repo.dir}")
    click.echo(f"trusted root for devices: {repo.metadata_dir / '1.root.json'}")
    click.echo(f"ROOT KEY: {root_key} -- move it off this server now; needed only to rotate keys")


@app.command("release")
@_dir_option
@click.option(
    "--model", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True
)
@click.option("--name", required=True, help="model name, e.g. defect or ocr-rec")
@click.option("--version", "model_version", required=True, help="release version, e.g. 1.3.0")
@click.option("--min-dockgate", default=None, help="oldest Dockgate that may run it [this one]")
@click.option("--activate/--no-activate", default=True, show_default=True)
def release(
    directory: Path,
    model: Path,
    name: str,
    model_version: str,
    min_dockgate: str | None,
    activate: bool,
) -> None:
    """Sign MODEL as release NAME VERSION (and point devices at it unless --no-activate)."""
    from ota.release import describe_model, sha256_file
    from ota.repo import Repository

    info = describe_model(
        model,
        name,
        model_version,
        sha256=sha256_file(model),
        min_dockgate=min_dockgate or _dockgate_version(),
    )
    repo = Repository(directory)
    path = repo.release(model, info, activate=activate)
    click.echo(json.dumps({"target": path, **repo.versions()}, sort_keys=True))


@app.command("activate")
@_dir_option
@click.option("--name", required=True)
@click.option("--version", "model_version", required=True)
def activate(directory: Path, name: str, model_version: str) -> None:
    """Point devices at an earlier or later released version (a new signed instruction)."""
    from ota.repo import Repository

    repo = Repository(directory)
    repo.activate(name, model_version)
    click.echo(json.dumps(repo.versions(), sort_keys=True))


@app.command("refresh")
@_dir_option
def refresh(directory: Path) -> None:
    """Re-sign timestamp (and snapshot when due). Run at least daily."""
    from ota.repo import Repository

    click.echo(f"timestamp version {Repository(directory).refresh()}")


@app.command("list")
@_dir_option
def list_releases(directory: Path) -> None:
    """Signed targets and their custom metadata, as JSON."""
    from ota.repo import Repository

    click.echo(json.dumps(Repository(directory).releases(), indent=1, sort_keys=True))


# -- edge side ------------------------------------------------------------------------------
_ota_dir_option = click.option(
    "--ota-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("data/edge/ota"),
    show_default=True,
    help="this node's OTA directory (trusted metadata, staging, model slots)",
)


@app.command("trust")
@_ota_dir_option
@click.option("--root", "root_file", type=click.Path(path_type=Path, exists=True), required=True)
def trust(ota_dir: Path, root_file: Path) -> None:
    """Install the release server's signed root (1.root.json) as this node's trust anchor."""
    from ota.fetch import install_root

    click.echo(f"trusted root installed: {install_root(ota_dir, root_file.read_bytes())}")


@app.command("fetch")
@_ota_dir_option
@click.option("--url", required=True, help="release repository, e.g. https://cloud:8443/ota")
@click.option("--name", default="defect", show_default=True)
def fetch(ota_dir: Path, url: str, name: str) -> None:
    """Verify metadata and download (resuming) the release NAME should run; no install."""
    from ota.fetch import OtaClient

    model = OtaClient(url, ota_dir).fetch(name)
    out = {"name": model.name, "version": model.version, "sha256": model.sha256}
    click.echo(json.dumps({**out, "path": str(model.path), "size": model.size}, sort_keys=True))


@app.command("status")
@_ota_dir_option
def status(ota_dir: Path) -> None:
    """Installed model versions (active and previous) per name, as JSON."""
    from ota.swap import SlotStore

    result: dict[str, object] = {}
    for model_dir in sorted((ota_dir / "models").glob("*")):
        active, previous = SlotStore(ota_dir, model_dir.name).read()
        result[model_dir.name] = {
            "active": active.version if active else None,
            "previous": previous.version if previous else None,
        }
    click.echo(json.dumps(result, sort_keys=True))
