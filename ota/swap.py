"""Atomic model swap on the edge: load, warm up, self-test, flip a pointer, keep the old one.

The pipeline asks a :class:`ModelHolder` for the current model once per carton and uses that
:class:`Active` snapshot for every frame of the carton, so no carton is processed half by A and
half by B: the flip is one reference assignment between cartons.

Durable state per model name lives in ``<ota_dir>/models/<name>/``::

    <version>-<sha12>.onnx   verified model files (the active one and the previous one)
    state.json               {"active": slot, "previous": slot | null}, fsync + rename

Crash safety: a model file is moved into place (rename, directory fsync) *before* ``state.json``
names it, and a file is deleted only when the durable state no longer names it. So after a
SIGKILL anywhere, ``state.json`` names exactly one active version whose file is present and
verified; :meth:`Swapper.restore` loads it through the sha256-gated loader again.

This module needs only ``edge.contracts``: the loader (``edge.vision.session.load_session``)
and the self-test are passed in by the runtime wiring.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from edge.contracts.errors import DockgateError, ErrorCode
from ota.fetch import Events, VerifiedModel
from ota.fsutil import atomic_copy, fsync_dir

T = TypeVar("T")
#: ``(path, sha256, size) -> loaded, warmed-up model``; must refuse a file whose sha256 differs.
Loader = Callable[[Path, str, int], T]
STATE_FILE = "state.json"
MAX_REFUSED = 20  # remembered self-refused releases per model name


@dataclass(frozen=True)
class SelfTestResult:
    """Outcome of a known-answer test: ``passed`` and the figures it was decided on."""

    passed: bool
    correct: int
    total: int
    detail: str = ""


#: Runs the loaded model on fixture frames with known answers.
SelfTest = Callable[[T], SelfTestResult]


@dataclass(frozen=True)
class Slot:
    """One installed, verified model version."""

    name: str
    version: str
    sha256: str
    size: int
    file: str  # file name inside the model's slot directory

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Slot:
        slot = cls(
            name=str(raw["name"]),
            version=str(raw["version"]),
            sha256=str(raw["sha256"]),
            size=int(raw["size"]),
            file=str(raw["file"]),
        )
        if "/" in slot.file or slot.file.startswith("."):
            raise ValueError(f"slot file {slot.file!r} is not a plain file name")
        return slot


@dataclass(frozen=True)
class Active(Generic[T]):
    """What the pipeline uses for one carton: the model and the version it came from."""

    slot: Slot
    model: T

    @property
    def version(self) -> str:
        return self.slot.version


class ModelHolder(Generic[T]):
    """The one pointer the pipeline reads; swapped in a single assignment between cartons."""

    def __init__(self) -> None:
        self._active: Active[T] | None = None
        self._lock = threading.Lock()

    def current(self) -> Active[T]:
        active = self._active  # one read: the caller keeps this snapshot for the whole carton
        if active is None:
            raise DockgateError(ErrorCode.OTA_NOT_INSTALLED, "no model installed yet")
        return active

    def set(self, active: Active[T]) -> Active[T] | None:
        with self._lock:
            previous, self._active = self._active, active
        return previous


class SlotStore:
    """The durable slots of one model name: files plus ``state.json``."""

    def __init__(self, ota_dir: Path, name: str) -> None:
        self.name = name
        self.dir = ota_dir / "models" / name

    def path(self, slot: Slot) -> Path:
        return self.dir / slot.file

    def _raw(self) -> dict[str, Any] | None:
        try:
            raw: dict[str, Any] = json.loads((self.dir / STATE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DockgateError(ErrorCode.OTA_NOT_INSTALLED, f"{self.dir}: {exc}") from None
        return raw

    def read(self) -> tuple[Slot | None, Slot | None]:
        """``(active, previous)``; ``(None, None)`` before the first install."""
        raw = self._raw()
        if raw is None:
            return None, None
        active = Slot.from_dict(raw["active"])
        previous = Slot.from_dict(raw["previous"]) if raw.get("previous") else None
        return active, previous

    def probation(self) -> int | None:
        """Starts since the last switch that nobody confirmed healthy (``None``: confirmed)."""
        raw = self._raw()
        value = raw.get("probation") if raw else None
        return int(value) if value is not None else None

    def refused(self) -> list[dict[str, str]]:
        """Releases this device refused on its own (self-test, crash loop, health), newest last."""
        raw = self._raw()
        return list(raw.get("refused", [])) if raw else []

    def write(
        self,
        active: Slot,
        previous: Slot | None,
        *,
        probation: int | None = None,
        refuse: dict[str, str] | None = None,
    ) -> None:
        refused = self.refused() + ([refuse] if refuse else [])
        data = {
            "active": asdict(active),
            "previous": asdict(previous) if previous else None,
            "probation": probation,
            "refused": refused[-MAX_REFUSED:],
        }
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.dir / f".{STATE_FILE}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(data, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.dir / STATE_FILE)
        fsync_dir(self.dir)

    def refuse(self, entry: dict[str, str]) -> None:
        """Remember a release this device refused (e.g. a shadow candidate that failed its
        self-test) without changing what runs or its probation."""
        active, previous = self.read()
        if active is None:
            return
        self.write(active, previous, probation=self.probation(), refuse=entry)

    def adopt(self, model: VerifiedModel, *, move: bool = True) -> Slot:
        """Put a verified file into the slot directory: moved (a staged download, same
        filesystem: one rename) or copied (a factory model shipped in the image)."""
        slot = Slot(
            name=self.name,
            version=model.version,
            sha256=model.sha256,
            size=model.size,
            file=f"{_safe(model.version)}-{model.sha256[:12]}.onnx",
        )
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.path(slot)
        if target.exists():
            return slot
        if move:
            os.replace(model.path, target)
            fsync_dir(self.dir)
            fsync_dir(model.path.parent)
        else:
            atomic_copy(model.path, target)
        return slot

    def prune(self, keep: set[str]) -> None:
        """Delete model files the durable state does not name (after ``write``)."""
        for file in self.dir.glob("*.onnx"):
            if file.name not in keep:
                file.unlink(missing_ok=True)


class Swapper(Generic[T]):
    """Installs verified releases of one model name into a :class:`ModelHolder`."""

    def __init__(
        self,
        store: SlotStore,
        load: Loader[T],
        selftest: SelfTest[T],
        holder: ModelHolder[T] | None = None,
        events: Events | None = None,
        *,
        max_unconfirmed_starts: int = 3,
    ) -> None:
        """``max_unconfirmed_starts``: starts on a new version before :meth:`confirm` after
        which :meth:`restore` decides it is a crash loop and goes back to the previous one."""
        self.max_unconfirmed_starts = max_unconfirmed_starts
        self.store = store
        self.load = load
        self.selftest = selftest
        self.holder: ModelHolder[T] = holder or ModelHolder()
        self._events = events or (lambda _e: None)
        self._lock = threading.Lock()  # one install/rollback at a time

    def _load(self, slot: Slot) -> T:
        return self.load(self.store.path(slot), slot.sha256, slot.size)

    def _holds(self, slot: Slot) -> bool:
        try:
            return self.holder.current().slot == slot
        except DockgateError:
            return False

    def restore(self) -> Active[T]:
        """Start-up: load the persisted active version (the previous one if it will not load,
        or if the active one was started too often without being confirmed healthy)."""
        with self._lock:
            active, previous = self.store.read()
            if active is None:
                raise DockgateError(ErrorCode.OTA_NOT_INSTALLED, f"nothing in {self.store.dir}")
            starts = self.store.probation()
            if starts is not None and previous is not None:
                if starts + 1 > self.max_unconfirmed_starts:
                    return self._back_to(previous, active, f"crash loop: {starts} starts")
                self.store.write(active, previous, probation=starts + 1)  # before loading
            try:
                loaded = Active(active, self._load(active))
            except DockgateError as exc:
                if previous is None:
                    raise
                return self._back_to(previous, active, f"does not load: {exc.message}")
            self.holder.set(loaded)
            return loaded

    def confirm(self) -> None:
        """The new version ran healthy (the runtime decides when): end its probation."""
        with self._lock:
            active, previous = self.store.read()
            if active is not None and self.store.probation() is not None:
                self.store.write(active, previous)
                self._events(f"confirmed {active.version}")

    def _back_to(self, previous: Slot, failed: Slot, reason: str) -> Active[T]:
        loaded = Active(previous, self._load(previous))
        refuse = {"version": failed.version, "sha256": failed.sha256, "reason": reason}
        self.store.write(previous, None, refuse=refuse)
        self.holder.set(loaded)
        self._events(f"rolled back {failed.version} -> {previous.version}: {reason}")
        self.store.prune({previous.file})
        return loaded

    def install(self, model: VerifiedModel, *, move: bool = True) -> Active[T]:
        """Adopt, load (sha256-gated), self-test and switch; a failed self-test never switches.

        ``move=False`` copies the file (first install of the model shipped in the image).
        """
        with self._lock:
            current, previous = self.store.read()
            slot = self.store.adopt(model, move=move)
            self._events("adopted")
            if current is not None and slot == current and self._holds(slot):
                return self.holder.current()
            loaded = self._load(slot)
            self._events("loaded")
            result = self.selftest(loaded)
            if not result.passed:
                if current is not None:  # remembered across restarts: no install loops
                    refuse = {"version": slot.version, "sha256": slot.sha256, "reason": "self-test"}
                    self.store.write(current, previous, refuse=refuse)
                keep = {s.file for s in self.store.read() if s is not None}
                self.store.prune(keep)
                raise DockgateError(
                    ErrorCode.OTA_SELFTEST_FAILED,
                    f"{slot.name} {slot.version}: {result.correct}/{result.total} known answers "
                    f"{result.detail}".rstrip(),
                )
            self._events("selftest passed")
            keep_previous = current if current is not None and current != slot else previous
            # On probation until confirm(): a crash loop on the new version rolls back at start.
            self.store.write(slot, keep_previous, probation=0 if keep_previous else None)
            self._events("persisted")
            active = Active(slot, loaded)
            self.holder.set(active)
            self._events("switched")
            self.store.prune({slot.file} | ({keep_previous.file} if keep_previous else set()))
            return active

    def switch_to_kept(self, version: str, signed_sha256: str) -> Active[T] | None:
        """The cloud assigns the version kept for rollback (its rollout was rolled back or
        aborted): go back to it without a download, provided its file is the one the current
        signed metadata names (``signed_sha256``). The version left is not refused (the cloud
        decided, not the device) and stays kept. ``None`` when no kept slot matches."""
        with self._lock:
            active, previous = self.store.read()
            if active is None or previous is None:
                return None
            if previous.version != version or previous.sha256 != signed_sha256:
                return None
            loaded = Active(previous, self._load(previous))  # sha256-gated, before any change
            self.store.write(previous, active)
            self.holder.set(loaded)
            self._events(f"reverted {active.version} -> {previous.version}")
            return loaded

    def rollback(self, reason: str = "health check failed after the switch") -> Active[T]:
        """The device decides to go back to the previous version (kept on disk); the failed
        release is remembered so that it is not installed again (and can be reported)."""
        with self._lock:
            active, previous = self.store.read()
            if previous is None or active is None:
                raise DockgateError(
                    ErrorCode.OTA_NOT_INSTALLED, "no previous version to go back to"
                )
            return self._back_to(previous, active, reason)


def _safe(version: str) -> str:
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in version).lstrip(".")
