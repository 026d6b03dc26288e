"""The OTA agent of one device: follows the cloud's directive, reports figures, keeps the line up.

One :meth:`OtaAgent.step` is one poll: a heartbeat (``POST /v1/ota/report``, answered with the
directive) when one is due, else an assignment poll with ``If-None-Match`` (``304`` costs
nothing). The directive is then applied per model name (see ``edge/contracts/ota.py``):

* the acting version: nothing to do when it runs already; the version kept for rollback is
  switched back to without a download once the current signed metadata still names its file
  (a rollout rolled back or aborted); otherwise TUF refresh, resumable download into staging,
  verification against the signed length and sha256, load (sha256-gated), self-test on fixture
  frames, then the holder's pointer flips between cartons. A failed self-test never switches;
* the shadow version (optional): fetched and verified the same way, self-tested, and kept beside
  the acting one; the runtime runs it on the same frames, never acts on it and records
  disagreements under its version;
* after a switch the new version is on probation: once ``probation_observations`` cartons ran
  on it, an error rate above ``probation_max_error_rate`` sends the device back to the previous
  version on its own (remembered, reported, never reinstalled), otherwise it is confirmed.
  A crash loop (the process dying before confirmation) is caught by ``Swapper.restore``.

Every failure (expired or replayed metadata, a bad signature or hash, a broken link, a failed
self-test) leaves the running model in place; its code is reported as ``last_code`` with the next
heartbeat, which is sent at once after any change. A version the device refused on its own is
never downloaded again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.ota import (
    Assignment,
    ModelFigures,
    ModelReport,
    OtaDirective,
    OtaReport,
    RefusedRelease,
)
from ota.fetch import Events, OtaClient
from ota.figures import FiguresWindow, Window
from ota.link import CloudLink
from ota.swap import Active, Slot, Swapper
from ota.updater import running_dockgate, version_key

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_FIGURES = 4  # versions per model per report (the contract's bound)


@dataclass
class Managed(Generic[T]):
    """One model name on this device: its swapper, shadow and the state of its last cycle."""

    swapper: Swapper[T]
    figures: FiguresWindow = field(default_factory=FiguresWindow)
    shadow: Active[T] | None = None
    last_code: ErrorCode | None = None
    last_detail: str = ""
    probation_observations: int = 0
    probation_errors: int = 0

    def active(self) -> Active[T] | None:
        try:
            return self.swapper.holder.current()
        except DockgateError:
            return None

    def running(self) -> str | None:
        active = self.active()
        return active.version if active else None

    def refused(self, version: str, sha256: str | None = None) -> dict[str, str] | None:
        for entry in self.swapper.store.refused():
            if entry.get("version") == version or (sha256 and entry.get("sha256") == sha256):
                return entry
        return None


class OtaAgent(Generic[T]):
    """Keeps this device's models on the versions the cloud assigns it."""

    def __init__(
        self,
        link: CloudLink,
        client: OtaClient,
        models: Mapping[str, Managed[T]],
        *,
        heartbeat_s: float = 30.0,
        probation_observations: int = 50,
        probation_max_error_rate: float = 0.2,
        dockgate_version: str | None = None,
        events: Events | None = None,
        clock: Callable[[], float] = time.monotonic,
        report_seq: int | None = None,
    ) -> None:
        self.link = link
        self.client = client
        self.models = dict(models)
        self.heartbeat_s = heartbeat_s
        self.probation_observations = probation_observations
        self.probation_max_error_rate = probation_max_error_rate
        self.dockgate_version = dockgate_version or running_dockgate()
        self._events = events or (lambda _e: None)
        self._clock = clock
        # increasing per device: microseconds of the wall clock at start, +1 per report
        self._seq = report_seq if report_seq is not None else time.time_ns() // 1000
        self._next_report = 0.0
        self.directive: OtaDirective | None = None
        self.poll_after_s = heartbeat_s
        self.last_error: DockgateError | None = None  # of the last exchange with the cloud
        self._lock = threading.Lock()  # one step at a time (the node's thread, a test, a CLI)

    @property
    def device_id(self) -> str:
        return self.link.signer.device_id

    # -- what the pipeline calls ------------------------------------------------------------
    def observe(
        self,
        name: str,
        version: str,
        *,
        latency_ms: float | None = None,
        confidence: float | None = None,
        error: bool = False,
        review: bool = False,
        defect: bool = False,
        count: int = 1,
    ) -> None:
        """One carton (``count`` cartons) processed by ``version`` of model ``name``."""
        m = self.models[name]
        m.figures.observe(
            version,
            latency_ms=latency_ms,
            confidence=confidence,
            error=error,
            review=review,
            defect=defect,
            count=count,
        )
        active = m.active()
        if active is not None and active.version == version:
            m.probation_observations += count
            m.probation_errors += count if error else 0

    # -- one poll ---------------------------------------------------------------------------
    def step(self) -> float:
        """Poll or report, apply the directive, check probation; seconds until the next step."""
        with self._lock:
            now = self._clock()
            try:
                if now >= self._next_report:
                    directive: OtaDirective | None = self._report()
                else:
                    directive = self.link.assignments()
                    if directive is not None:
                        self.directive = directive
                self.last_error = None
            except DockgateError as exc:
                self.last_error = exc
                self._events(f"cloud: {exc.code.value}")
                directive = None
            changed = False
            if directive is not None or self.directive is not None:
                # a 304 or an unreachable cloud: keep following the last directive received
                changed = self.apply(directive or self.directive)  # type: ignore[arg-type]
            changed |= self._check_probation()
            if changed:
                try:  # a switch, a refusal or a failed cycle is reported at once
                    self._report()
                except DockgateError as exc:
                    self.last_error = exc
            wait = min(self.poll_after_s, max(0.0, self._next_report - self._clock()))
            return wait

    def run(self, stop: threading.Event, *, min_wait_s: float = 0.5) -> None:
        """Step until ``stop`` is set (the node runs this in its own thread)."""
        while not stop.is_set():
            try:
                wait = self.step()
            except Exception:  # never let the updater take the node down
                log.exception("OTA step failed")
                wait = self.heartbeat_s
            stop.wait(max(min_wait_s, wait))

    # -- reporting --------------------------------------------------------------------------
    def build_report(self) -> tuple[OtaReport, dict[str, Window]]:
        windows = {name: m.figures.take() for name, m in self.models.items()}
        reports = []
        for name, m in self.models.items():
            store = m.swapper.store
            active, previous = store.read()
            figures = self._bounded(m, windows[name])
            reports.append(
                ModelReport(
                    name=name,
                    running=m.running() or (active.version if active else None),
                    previous=previous.version if previous else None,
                    on_probation=store.probation() is not None,
                    refused=[RefusedRelease.model_validate(r) for r in store.refused()],
                    last_code=m.last_code,
                    figures=figures,
                )
            )
        self._seq += 1
        return OtaReport(device_id=self.device_id, models=reports, report_seq=self._seq), windows

    def _bounded(self, m: Managed[T], window: Window) -> dict[str, ModelFigures]:
        figures = window.figures()
        if len(figures) <= MAX_FIGURES:
            return figures
        keep = sorted(figures, key=lambda v: -figures[v].observations)[:MAX_FIGURES]
        rest = Window({v: c for v, c in window.counts.items() if v not in keep})
        m.figures.give_back(rest)  # reported with the next heartbeat
        for v in list(window.counts):
            if v not in keep:
                del window.counts[v]
        return {v: figures[v] for v in keep}

    def _report(self) -> OtaDirective:
        report, windows = self.build_report()
        try:
            directive = self.link.report(report)
        except DockgateError:
            for name, window in windows.items():  # carried into the next report
                self.models[name].figures.give_back(window)
            self._next_report = self._clock() + min(self.heartbeat_s, 5.0)
            raise
        self.directive = directive
        self.poll_after_s = directive.poll_after_s
        self._next_report = self._clock() + self.heartbeat_s
        return directive

    # -- following the directive ------------------------------------------------------------
    def apply(self, directive: OtaDirective) -> bool:
        """Follow ``directive`` for every managed model name; whether anything changed."""
        changed = False
        for name, m in self.models.items():
            mine = [a for a in directive.assignments if a.name == name]
            acting = next((a for a in mine if not a.shadow), None)
            shadow = next((a for a in mine if a.shadow), None)
            if acting is not None:
                changed |= self._follow(name, m, acting)
            changed |= self._follow_shadow(name, m, shadow, acting)
        return changed

    def _signed(self, a: Assignment) -> str:
        """Refresh TUF metadata and check the target is the signed ``a.name`` ``a.version``;
        returns its signed sha256."""
        self.client.refresh()
        custom = self.client.target_custom(a.target)
        if custom.get("name") != a.name or custom.get("version") != a.version:
            raise DockgateError(
                ErrorCode.OTA_SIGNATURE_INVALID,
                f"{a.target}: signed metadata says {custom.get('name')} "
                f"{custom.get('version')}, not {a.name} {a.version}",
            )
        needs = str(custom.get("min_dockgate", "0"))
        if version_key(needs) > version_key(self.dockgate_version):
            raise DockgateError(
                ErrorCode.OTA_INCOMPATIBLE,
                f"{a.name} {a.version} needs Dockgate {needs}, this is {self.dockgate_version}",
            )
        return self.client.target_sha256(a.target)

    def _follow(self, name: str, m: Managed[T], a: Assignment) -> bool:
        if a.version == m.running():
            changed = m.last_code is not None
            m.last_code, m.last_detail = None, ""
            return changed
        before = (m.last_code, m.running())
        refused = m.refused(a.version, a.sha256)
        if refused is not None:
            reason = refused.get("reason", "")
            m.last_code = (
                ErrorCode.OTA_SELFTEST_FAILED
                if reason == "self-test"
                else ErrorCode.OTA_DEVICE_ROLLBACK
            )
            m.last_detail = f"{a.version} refused earlier on this device ({reason})"
            return before != (m.last_code, m.running())
        try:
            try:
                sha = self._signed(a)
            except DockgateError as exc:
                if exc.code is not ErrorCode.OTA_METADATA_EXPIRED:
                    raise
                # The cloud sends this device back to the version it kept, whose file was
                # verified when it was installed: expired metadata must not keep it on the one
                # being rolled back. Anything new still needs fresh metadata.
                if m.swapper.switch_to_kept(a.version, a.sha256) is None:
                    raise
                self._events(f"{name} back to kept {a.version} (metadata expired)")
                m.last_code, m.last_detail = exc.code, exc.message
                return True
            if m.refused(a.version, sha) is None:
                if m.swapper.switch_to_kept(a.version, sha) is None:
                    model = self.client.fetch_target(name, a.version, a.target)
                    m.swapper.install(model)
                    m.probation_observations = m.probation_errors = 0
                self._events(f"{name} now {a.version}")
                m.last_code, m.last_detail = None, ""
        except DockgateError as exc:
            m.last_code, m.last_detail = exc.code, exc.message
            self._events(f"{name} {a.version} refused: {exc.code.value}")
        return before != (m.last_code, m.running())

    def _follow_shadow(
        self, name: str, m: Managed[T], a: Assignment | None, acting: Assignment | None
    ) -> bool:
        if a is None or (acting is not None and a.version == acting.version):
            dropped = m.shadow is not None
            m.shadow = None
            return dropped
        if m.shadow is not None and m.shadow.version == a.version:
            return False
        dropped = m.shadow is not None
        m.shadow = None  # another version asked for: the old shadow's figures end here
        if m.refused(a.version, a.sha256) is not None:
            return dropped
        try:
            self._signed(a)
            model = self.client.fetch_target(name, a.version, a.target)
            loaded = m.swapper.load(model.path, model.sha256, model.size)
            result = m.swapper.selftest(loaded)
            slot = Slot(name, a.version, model.sha256, model.size, model.path.name)
            if not result.passed:
                m.swapper.store.refuse(
                    {"version": a.version, "sha256": model.sha256, "reason": "self-test"}
                )
                raise DockgateError(
                    ErrorCode.OTA_SELFTEST_FAILED,
                    f"{name} {a.version} (shadow): {result.correct}/{result.total} known answers",
                )
            m.shadow = Active(slot, loaded)
            self._events(f"{name} shadow {a.version}")
        except DockgateError as exc:
            m.last_code, m.last_detail = exc.code, exc.message
            self._events(f"{name} {a.version} (shadow) refused: {exc.code.value}")
        return True

    # -- probation --------------------------------------------------------------------------
    def _check_probation(self) -> bool:
        changed = False
        for name, m in self.models.items():
            if m.swapper.store.probation() is None:
                continue
            if m.probation_observations < self.probation_observations:
                continue
            rate = m.probation_errors / m.probation_observations
            if rate > self.probation_max_error_rate:
                failed = m.running()
                reason = (
                    f"health: error rate {rate:.2f} over {m.probation_observations} cartons "
                    f"(limit {self.probation_max_error_rate:.2f})"
                )
                try:
                    m.swapper.rollback(reason)
                except DockgateError as exc:  # nothing kept to go back to: keep running
                    m.last_code, m.last_detail = exc.code, exc.message
                else:
                    m.last_code, m.last_detail = ErrorCode.OTA_DEVICE_ROLLBACK, reason
                    self._events(f"{name} {failed} rolled back on the device: {reason}")
            else:
                m.swapper.confirm()
            m.probation_observations = m.probation_errors = 0
            changed = True
        return changed
