"""The model-release repository (TUF), built with python-tuf's Metadata API.

On disk (``<dir>`` is what ``dockgate ota keys init --dir`` was given)::

    keys/{targets,snapshot,timestamp}.key   online role keys, 0600
    metadata/N.root.json, root.json          root, versioned (clients walk N -> N+1)
    metadata/N.targets.json, N.snapshot.json consistent snapshots: never rewritten once published
    metadata/timestamp.json                  the one file that changes in place (atomic rename)
    targets/<name>/<version>/<sha256>.<file> model files, hash-prefixed (consistent snapshot)
    targets/<name>/<sha256>.active.json      which version of <name> devices should run

The root key is written outside ``keys/`` (``--root-key``) for the operator to move offline.
Publishing writes the files in dependency order (target, targets, snapshot, timestamp last, each
by rename), so a client reading concurrently sees either the old or the new consistent set.
A rollback is never an old file: :meth:`Repository.activate` signs a new, higher-versioned
targets role whose ``active.json`` names the older model version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from edge.contracts.errors import DockgateError, ErrorCode
from ota.fsutil import atomic_write
from ota.keys import ONLINE_ROLES, load_signer, write_private_key
from ota.release import ReleaseInfo

#: Default lifetimes; the timestamp role must be re-signed (``dockgate ota refresh``) daily.
EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "snapshot": timedelta(days=7),
    "timestamp": timedelta(hours=24),
}
SPEC_VERSION = "1.0.31"
ACTIVE_FILE = "active.json"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Repository:
    """Signs and stages releases in one repository directory (not thread-safe: one publisher)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.metadata_dir = directory / "metadata"
        self.targets_dir = directory / "targets"
        self._serializer = JSONSerializer(compact=False)

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def init(cls, directory: Path, root_key: Path) -> Repository:
        """New keys for all four roles and version-1 metadata; refuses an existing repository."""
        repo = cls(directory)
        if (repo.metadata_dir / "1.root.json").exists():
            raise DockgateError(ErrorCode.CONFIG_INVALID, f"{directory} already has a repository")
        signers = {"root": write_private_key(root_key)}
        for role in ONLINE_ROLES:
            signers[role] = write_private_key(repo.key_path(role))
        now = _now()
        root = Root(version=1, expires=now + EXPIRY["root"], consistent_snapshot=True)
        for role, signer in signers.items():
            root.add_key(signer.public_key, role)
        root_md = Metadata(root)
        root_md.sign(signers["root"])
        repo._write_versioned(root_md, "root")
        targets = Metadata(Targets(version=1, expires=now + EXPIRY["targets"]))
        repo._publish(targets, {r: signers[r] for r in ONLINE_ROLES})
        return repo

    def key_path(self, role: str) -> Path:
        return self.dir / "keys" / f"{role}.key"

    # -- reading --------------------------------------------------------------------------
    def load(self, role: str) -> Metadata[Any]:
        path = self.metadata_dir / f"{role}.json"
        try:
            return Metadata.from_file(str(path))
        except (OSError, ValueError) as exc:
            raise DockgateError(
                ErrorCode.CONFIG_INVALID, f"no usable {role} metadata in {self.metadata_dir}: {exc}"
            ) from None

    def releases(self) -> dict[str, dict[str, Any]]:
        """Target path -> custom metadata of every signed target."""
        targets: Targets = self.load("targets").signed
        return {path: dict(t.custom) for path, t in targets.targets.items()}

    def versions(self) -> dict[str, int]:
        """The current version of each role's metadata."""
        return {role: self.load(role).signed.version for role in ("root", *ONLINE_ROLES)}

    # -- publishing -----------------------------------------------------------------------
    def release(self, model: Path, info: ReleaseInfo, *, activate: bool = True) -> str:
        """Stage ``model`` as ``<name>/<version>/<file>``; returns the target path.

        A (name, version) is published once: re-releasing it with other bytes is refused, so a
        device that trusted version X never sees two different files called X.
        """
        path = f"{info.name}/{info.version}/{model.name}"
        targets_md = self.load("targets")
        existing = targets_md.signed.targets.get(path)
        target = TargetFile.from_file(path, str(model), ["sha256"])
        if existing is not None and existing.hashes != target.hashes:
            raise DockgateError(
                ErrorCode.CONFIG_INVALID,
                f"{info.name} {info.version} is already released with another file; "
                "release a new version instead",
            )
        target.unrecognized_fields["custom"] = info.to_custom()
        self._stage_file(path, target.hashes["sha256"], model.read_bytes())
        targets_md.signed.targets[path] = target
        if activate:
            self._set_active(targets_md.signed, info.name, info.version, path)
        self._bump_and_publish(targets_md)
        return path

    def activate(self, name: str, version: str) -> None:
        """Point devices at an already released ``version`` of ``name`` (promotion or rollback)."""
        targets_md = self.load("targets")
        matches = [
            p
            for p, t in targets_md.signed.targets.items()
            if t.custom.get("name") == name and t.custom.get("version") == version
        ]
        if not matches:
            raise DockgateError(ErrorCode.CONFIG_INVALID, f"{name} {version} was never released")
        self._set_active(targets_md.signed, name, version, matches[0])
        self._bump_and_publish(targets_md)

    def refresh(self, *, timestamp_expiry: timedelta = EXPIRY["timestamp"]) -> int:
        """Re-sign snapshot (if due within a day) and timestamp; returns the new timestamp version.

        Run this at least daily (cron/systemd timer on the release server): devices refuse
        expired metadata and would keep their current model.
        """
        snapshot_md = self.load("snapshot")
        if snapshot_md.signed.expires - _now() < timedelta(days=1):
            snapshot_md.signed.version += 1
            snapshot_md.signed.expires = _now() + EXPIRY["snapshot"]
            self._sign_write(snapshot_md, "snapshot")
        return self._timestamp(snapshot_md.signed.version, timestamp_expiry)

    # -- internals ------------------------------------------------------------------------
    def _set_active(self, targets: Targets, name: str, version: str, path: str) -> None:
        pointer = {"name": name, "version": version, "target": path}
        data = json.dumps(pointer, sort_keys=True).encode()
        active_path = f"{name}/{ACTIVE_FILE}"
        active = TargetFile.from_data(active_path, data, ["sha256"])
        active.unrecognized_fields["custom"] = {"active": pointer}
        self._stage_file(active_path, active.hashes["sha256"], data)
        targets.targets[active_path] = active

    def _stage_file(self, target_path: str, sha256: str, data: bytes) -> None:
        rel = Path(target_path)
        dest = self.targets_dir / rel.parent / f"{sha256}.{rel.name}"
        if not dest.exists():
            atomic_write(dest, data)

    def _bump_and_publish(self, targets_md: Metadata[Any]) -> None:
        targets_md.signed.version += 1
        targets_md.signed.expires = _now() + EXPIRY["targets"]
        self._publish(targets_md, {r: load_signer(self.key_path(r)) for r in ONLINE_ROLES})

    def _publish(self, targets_md: Metadata[Any], signers: Mapping[str, CryptoSigner]) -> None:
        targets_md.signatures.clear()
        targets_md.sign(signers["targets"])
        self._write_versioned(targets_md, "targets")
        snap_path = self.metadata_dir / "snapshot.json"
        version = Metadata.from_file(str(snap_path)).signed.version + 1 if snap_path.exists() else 1
        snapshot = Snapshot(version=version, expires=_now() + EXPIRY["snapshot"])
        snapshot.meta["targets.json"] = MetaFile(version=targets_md.signed.version)
        snapshot_md = Metadata(snapshot)
        snapshot_md.sign(signers["snapshot"])
        self._write_versioned(snapshot_md, "snapshot")
        self._timestamp(version, EXPIRY["timestamp"], signers["timestamp"])

    def _sign_write(self, md: Metadata[Any], role: str) -> None:
        md.signatures.clear()
        md.sign(load_signer(self.key_path(role)))
        self._write_versioned(md, role)

    def _timestamp(
        self, snapshot_version: int, expiry: timedelta, signer: CryptoSigner | None = None
    ) -> int:
        ts_path = self.metadata_dir / "timestamp.json"
        version = Metadata.from_file(str(ts_path)).signed.version + 1 if ts_path.exists() else 1
        ts = Timestamp(
            version=version,
            expires=_now() + expiry,
            snapshot_meta=MetaFile(version=snapshot_version),
        )
        ts_md = Metadata(ts)
        ts_md.sign(signer or load_signer(self.key_path("timestamp")))
        atomic_write(ts_path, ts_md.to_bytes(self._serializer))
        return version

    def _write_versioned(self, md: Metadata[Any], role: str) -> None:
        data = md.to_bytes(self._serializer)
        atomic_write(self.metadata_dir / f"{md.signed.version}.{role}.json", data)
        atomic_write(self.metadata_dir / f"{role}.json", data)
