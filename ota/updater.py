"""One update cycle for one model name: refresh, fetch, verify, install; never stop the line.

:func:`update_once` is what a poll (or an MQTT nudge) runs. Whatever goes wrong (expired or
replayed metadata, a bad signature or hash, a broken link, a failed self-test) the running model
stays in the holder and the outcome carries the stable code to report to the cloud. A release
whose self-test failed is remembered by sha256 and not downloaded again (no install loops).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Generic, TypeVar

from edge.contracts.errors import DockgateError, ErrorCode
from ota.fetch import OtaClient
from ota.swap import Swapper

T = TypeVar("T")


def version_key(text: str) -> tuple[int, ...]:
    """Leading dotted numbers of a version (``1.3.0rc1`` -> ``(1, 3, 0)``) for comparisons."""
    match = re.match(r"^[0-9]+(\.[0-9]+)*", text.strip())
    return tuple(int(p) for p in match.group(0).split(".")) if match else (0,)


def running_dockgate() -> str:
    try:
        return version("dockgate")
    except PackageNotFoundError:  # pragma: no cover - bare checkout without metadata
        return "0"


@dataclass(frozen=True)
class UpdateOutcome:
    """What one cycle did, in the shape a heartbeat reports it."""

    name: str
    running: str | None
    offered: str | None = None
    switched: bool = False
    code: ErrorCode | None = None
    detail: str = ""


@dataclass
class Updater(Generic[T]):
    """Keeps ``swapper``'s model ``name`` on the version the signed repository points at."""

    client: OtaClient
    swapper: Swapper[T]
    name: str
    refused: set[str] = field(default_factory=set)  # sha256 of releases that failed self-test
    dockgate_version: str = field(default_factory=running_dockgate)

    def _running(self) -> str | None:
        try:
            return self.swapper.holder.current().version
        except DockgateError:
            return None

    def update_once(self) -> UpdateOutcome:
        running = self._running()
        offered: str | None = None
        try:
            self.client.refresh()
            pointer = self.client.assignment(self.name)
            offered = pointer["version"]
            if offered == running:
                return UpdateOutcome(self.name, running, offered)
            custom = self.client.target_custom(pointer["target"])
            needs = str(custom.get("min_dockgate", "0"))
            if version_key(needs) > version_key(self.dockgate_version):
                return UpdateOutcome(
                    self.name,
                    running,
                    offered,
                    code=ErrorCode.OTA_INCOMPATIBLE,
                    detail=f"needs Dockgate {needs}, this is {self.dockgate_version}",
                )
            sha = self.client.target_sha256(pointer["target"])
            refused = {r["sha256"]: r for r in self.swapper.store.refused()}
            if sha in self.refused or sha in refused:
                reason = refused.get(sha, {}).get("reason", "self-test")
                code = (
                    ErrorCode.OTA_SELFTEST_FAILED
                    if reason == "self-test"
                    else ErrorCode.OTA_DEVICE_ROLLBACK
                )
                return UpdateOutcome(
                    self.name,
                    running,
                    offered,
                    code=code,
                    detail=f"refused earlier on this device ({reason}); waiting for another",
                )
            model = self.client.fetch(self.name)
            try:
                active = self.swapper.install(model)
            except DockgateError as exc:
                if exc.code is ErrorCode.OTA_SELFTEST_FAILED:
                    self.refused.add(model.sha256)
                raise
            return UpdateOutcome(self.name, active.version, offered, switched=True)
        except DockgateError as exc:
            return UpdateOutcome(
                self.name, self._running(), offered, code=exc.code, detail=str(exc)
            )
