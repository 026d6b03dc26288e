"""OTA in the running node: the defect model behind a swappable holder, and the OTA agent thread.

With ``[ota] enabled = true`` and ``"defect"`` in ``[ota] models`` the node does not load the
defect model directly: it restores the durable slot state under ``<ota dir>/models/defect/``
(going back to the previous version on a crash loop, see :meth:`ota.swap.Swapper.restore`), or
installs the model shipped in the image as the first slot (copied, verified against the
manifest's sha256, self-tested). The inference stage asks :meth:`NodeOta.current` once per
carton and uses that snapshot for every frame of the carton: a switch lands between cartons.

Per carton the stage reports to :meth:`NodeOta.record` (latency, confidence, defect or not, the
read ending in REVIEW/UNREADABLE, errors), and scanner pairs arrive through
:meth:`NodeOta.on_pair`; both go into the per-version figures the agent sends with each
heartbeat. Scanner agreement is attributed to the defect model version that ran when the pair
closed: the rollout gates compare devices on B with devices on A over the same time, so a
signal the candidate does not influence stays equal on both sides and passes.

Shadow mode: when the cloud assigns a shadow version, :meth:`NodeOta.shadow_check` runs it on
the same frame after the acting model and counts a disagreement when its action (pass, review,
freeze) differs; its result is never acted on.

The agent needs the device identity (``dockgate enroll``) and ``[sync] cloud_url``; without them
the node runs the restored model and no agent starts.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.contracts.errors import DockgateError, ErrorCode
from ota.agent import Managed, OtaAgent
from ota.fetch import OtaClient, VerifiedModel
from ota.selftest import KnownAnswer, KnownAnswerTest
from ota.swap import Active, SlotStore, Swapper

if TYPE_CHECKING:
    from edge.config import EdgeConfig
    from edge.vision.defects.model import DefectModel, DefectVerdict

log = logging.getLogger(__name__)
DEFECT = "defect"
SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "samples" / "defects"


def defect_selftest(
    samples: Path = SAMPLES, min_accuracy: float = 0.7
) -> KnownAnswerTest[Any, Any]:
    """Known answers for a candidate defect model: the committed frames and their labels."""
    import json

    from edge.vision.image import read_image

    truth: dict[str, dict[str, Any]] = json.loads((samples / "truth.json").read_text())
    answers = [
        KnownAnswer(name, read_image(samples / name), str(entry["label"]))
        for name, entry in sorted(truth.items())
    ]

    def predict(model: DefectModel, image: Any) -> str:
        return model.predict(image).top_class

    return KnownAnswerTest(answers, predict, min_accuracy=min_accuracy)


class NodeOta:
    """The defect model's holder, its figures and (once enrolled) the OTA agent thread."""

    def __init__(self, config: EdgeConfig) -> None:
        from edge.runtime import components
        from edge.vision.defects.model import DefectModel

        self.config = config
        self.ota_dir = config.ota.ota_dir(components.data_dir(config))
        threads = config.defects.threads

        def load(path: Path, sha256: str, size: int) -> DefectModel:
            return DefectModel.load(path, sha256=sha256, threads=threads)

        self.swapper: Swapper[DefectModel] = Swapper(
            SlotStore(self.ota_dir, DEFECT),
            load,
            defect_selftest(min_accuracy=config.ota.selftest_min_accuracy),
            events=lambda e: log.info("OTA defect: %s", e),
        )
        self.managed: Managed[DefectModel] = Managed(self.swapper)
        self.agent: OtaAgent[DefectModel] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._confirmed_at: float | None = None

    # -- start-up -----------------------------------------------------------------------------
    def restore(self) -> Active[DefectModel]:
        """The persisted slot (crash-loop aware), or the shipped model as the first slot."""
        active, _previous = self.swapper.store.read()
        if active is not None:
            return self.swapper.restore()
        from edge.vision.session import model_entry

        entry = model_entry(DEFECT)
        size = entry.size if entry.size is not None else entry.path.stat().st_size
        shipped = VerifiedModel(DEFECT, entry.version, entry.path, entry.sha256, size, {})
        return self.swapper.install(shipped, move=False)

    def start_agent(self, signer: Any, stop: threading.Event | None = None) -> None:
        """The OTA agent thread (needs the device signer and ``[sync] cloud_url``)."""
        from ota.link import CloudLink

        cfg = self.config
        if signer is None or not cfg.sync.cloud_url or not cfg.ota.url:
            log.info("OTA agent off: not enrolled, or no sync.cloud_url / ota.url")
            return
        verify: Any = True
        if cfg.sync.tls_ca_file is not None:
            import ssl

            verify = ssl.create_default_context(cafile=str(cfg.sync.tls_ca_file))
        client = OtaClient(cfg.ota.url, self.ota_dir, timeout_s=cfg.ota.timeout_s, verify=verify)
        link = CloudLink(cfg.sync.cloud_url, signer, timeout_s=cfg.ota.timeout_s, verify=verify)
        self.agent = OtaAgent(
            link,
            client,
            {DEFECT: self.managed},
            heartbeat_s=float(cfg.ota.poll_s),
            events=lambda e: log.info("OTA: %s", e),
        )
        self._stop = stop or threading.Event()
        agent = self.agent

        def run() -> None:
            try:
                agent.run(self._stop)
            finally:
                client.close()
                link.close()

        self._thread = threading.Thread(target=run, name="dg-ota", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    # -- what the inference stage calls -------------------------------------------------------
    def current(self) -> Active[DefectModel]:
        """The model for one carton (take it once per carton: switches land between cartons)."""
        return self.swapper.holder.current()

    def thresholds(self, model: DefectModel) -> tuple[float, float]:
        """(freeze, review): the config's when set, else the running model's own."""
        cfg = self.config.defects
        return (
            cfg.freeze_threshold or model.info.freeze_threshold,
            cfg.review_threshold or model.info.review_threshold,
        )

    def record(
        self,
        version: str,
        verdict: DefectVerdict | None,
        *,
        latency_ms: float,
        read_status: str | None = None,
        error: bool = False,
    ) -> None:
        """One carton through ``version`` (``error``: the model raised). Without an agent
        (not enrolled) there is nobody to report to and nothing is kept."""
        if self.agent is None:
            return
        self.agent.observe(
            DEFECT,
            version,
            latency_ms=latency_ms,
            confidence=verdict.top_score if verdict is not None else None,
            error=error,
            review=read_status in ("REVIEW", "UNREADABLE"),
            defect=verdict is not None and verdict.top_class != "ok",
        )

    def shadow_check(self, image: Any, action: str) -> None:
        """Shadow mode: the shadow version on the same frame; never acted on."""
        shadow = self.managed.shadow
        if shadow is None:
            return
        started = time.perf_counter()
        try:
            verdict = shadow.model.predict(image)
        except DockgateError as exc:
            if exc.code is ErrorCode.IMAGE_INVALID:
                return
            self.record(shadow.version, None, latency_ms=0.0, error=True)
            return
        except Exception:  # a shadow model crashing must never take the line down
            self.record(shadow.version, None, latency_ms=0.0, error=True)
            return
        from edge.vision.defects.verdict import verdict_action

        freeze, review = self.thresholds(shadow.model)
        shadow_action = str(verdict_action(verdict, freeze, review))
        self.record(shadow.version, verdict, latency_ms=(time.perf_counter() - started) * 1000)
        if shadow_action != action:
            self.managed.figures.disagreement(shadow.version)

    def on_pair(self, _ocr_version: str, agreed: bool) -> None:
        """A carton read by both the OCR (accepted) and the scanner."""
        version = self.managed.running()
        if version is not None:
            self.managed.figures.agreement(version, 1, int(agreed))
