"""OTA in the running node: the defect model and the CRNN behind swappable holders, and the agent.

With ``[ota] enabled = true`` the node does not load the models named in ``[ota] models``
directly: ``"defect"`` (with ``[defects] enabled``) and ``"ocr.crnn"`` (the CRNN code recogniser,
the name ``dockgate cloud train`` signs codes releases under). For each it restores the durable
slot state under ``<ota dir>/models/<name>/`` (going back to the previous version on a crash
loop, see :meth:`ota.swap.Swapper.restore`), or installs the model shipped in the image as the
first slot (copied, verified against the manifest's sha256, self-tested).

A CRNN version is loaded as an :class:`OcrModel`: the recogniser plus a
:class:`edge.vision.ocr.reader.Reader` built on it (``crnn=``) with the node's ``[ocr]``
settings. The Reader is built when the version is installed, on the agent's thread (it warms
the decoder), never on the carton path. ``[ocr] recognizer`` must use the CRNN (``crnn``,
``both`` or ``cascade``; edge/config.py refuses ``ppocr`` with ``ocr.crnn`` in the list).

The inference stage takes one snapshot per carton of each managed model (:meth:`NodeOta.current`
for the defect model, :meth:`NodeOta.current_ocr` for the CRNN) and uses it for every frame of
the carton: a switch lands between cartons.

Per carton the stage reports the defect model's figures to :meth:`NodeOta.record` and the
CRNN's to :meth:`NodeOta.record_ocr` (latency, confidence, the read ending in REVIEW or
UNREADABLE, errors), and notes which version of each model handled the carton. Scanner pairs
arrive through :meth:`NodeOta.on_pair` with the carton's id; the pair goes to the version of
each managed model that handled that carton: for the CRNN that is the version that made the read
(its own agreement figure, the one an OCR rollout is judged on); for the defect model it is a
signal the candidate does not influence, equal on both sides of a defect rollout, which the
rollout gates still need (they wait for a minimum of pairs per side).

Shadow mode: when the cloud assigns a shadow version, :meth:`NodeOta.shadow_check` (defect) and
:meth:`NodeOta.shadow_read` (CRNN) run it on the same frames after the acting model and count a
disagreement when its outcome differs (defect: pass, review or freeze; OCR: the status and the
fields read); its result is never acted on, and a shadow reader keeps no samples.

The agent needs the device identity (``dockgate enroll``) and ``[sync] cloud_url``; without them
the node runs the restored models and no agent starts.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from edge.contracts.errors import DockgateError, ErrorCode
from ota.agent import Managed, OtaAgent
from ota.fetch import OtaClient, VerifiedModel
from ota.selftest import KnownAnswer, KnownAnswerTest
from ota.swap import Active, ModelHolder, SelfTestResult, SlotStore, Swapper

if TYPE_CHECKING:
    from edge.config import EdgeConfig
    from edge.vision.defects.model import DefectModel, DefectVerdict
    from edge.vision.ocr.config import OcrConfig
    from edge.vision.ocr.crnn.runtime import CrnnRecognizer
    from edge.vision.ocr.reader import CartonRead, Reader
    from edge.vision.ocr.samples import SampleStore

log = logging.getLogger(__name__)
DEFECT = "defect"
CRNN = "ocr.crnn"  # cloud/services/training.py KINDS["codes"]: the name codes releases carry
MANAGED = (DEFECT, CRNN)
_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "samples"
SAMPLES = _FIXTURES / "defects"
CROPS = _FIXTURES / "cartons"
FIELDS = ("gtin", "lot", "expiry", "prod_date", "sscc")
_CARTONS_KEPT = 4096  # cartons whose model versions are remembered until their scanner pair


def defect_selftest(
    samples: Path = SAMPLES, min_accuracy: float = 0.7
) -> KnownAnswerTest[Any, Any]:
    """Known answers for a candidate defect model: the committed frames and their labels."""
    from edge.vision.image import read_image

    truth: dict[str, dict[str, Any]] = json.loads((samples / "truth.json").read_text())
    answers = [
        KnownAnswer(name, read_image(samples / name), str(entry["label"]))
        for name, entry in sorted(truth.items())
    ]

    def predict(model: DefectModel, image: Any) -> str:
        return model.predict(image).top_class

    return KnownAnswerTest(answers, predict, min_accuracy=min_accuracy)


@dataclass(frozen=True)
class OcrModel:
    """One installed CRNN version: its recogniser and the node's Reader built on it."""

    recognizer: CrnnRecognizer
    reader: Reader


def crnn_selftest(
    config: OcrConfig, samples: Path = CROPS, min_accuracy: float = 0.7
) -> Callable[[OcrModel], SelfTestResult]:
    """Known answers for a candidate CRNN: every field each committed carton crop prints
    (``truth.json`` ``crops``), read through a Reader with the node's ``[ocr]`` settings but the
    candidate as its only recogniser: in ``both`` or ``cascade`` PP-OCR would read the crops
    right whatever the CRNN says, and a garbage CRNN would pass. One answer per field, so a crop
    with a smudged date still counts its clean lot."""
    from edge.vision.image import read_image
    from edge.vision.ocr.reader import Reader

    truth: dict[str, Any] = json.loads((samples / "truth.json").read_text(encoding="utf-8"))
    answers = [
        KnownAnswer(f"{name} {key}", (read_image(samples / name), key), str(value))
        for name, entry in sorted(truth["crops"].items())
        for key, value in sorted(entry["fields"].items())
    ]
    alone = config.model_copy(update={"recognizer": "crnn"})

    def predict(reader: Reader, answer: tuple[Any, str]) -> str:
        image, key = answer
        return str(getattr(reader.read(image), key) or "")

    known: KnownAnswerTest[Reader, tuple[Any, str]] = KnownAnswerTest(
        answers, predict, min_accuracy=min_accuracy
    )

    def test(model: OcrModel) -> SelfTestResult:
        return known(Reader(alone, crnn=model.recognizer))  # no samples: fixtures, not cartons

    return test


class _ActingSamples:
    """The node's sample store as one CRNN version's Reader sees it: samples are kept only
    while that version acts (a shadow's reads are never acted on, and its REVIEW crops would
    be the acting version's cartons a second time)."""

    def __init__(self, store: SampleStore, holder: ModelHolder[OcrModel], sha256: str) -> None:
        self.store, self.holder, self.sha256 = store, holder, sha256

    def keep(self, image: Any, read: Any, **extra: Any) -> str | None:
        try:
            acting = self.holder.current().slot.sha256 == self.sha256
        except DockgateError:  # nothing installed yet (the self-test reads no cartons)
            acting = False
        return self.store.keep(image, read, **extra) if acting else None


class NodeOta:
    """The managed models' holders, their figures and (once enrolled) the OTA agent thread."""

    def __init__(self, config: EdgeConfig, *, samples: SampleStore | None = None) -> None:
        """``samples``: the reader's sample store (REVIEW/UNREADABLE crops of the acting CRNN)."""
        from edge.runtime import components

        self.config = config
        self.ota_dir = config.ota.ota_dir(components.data_dir(config))
        self.samples = samples
        self.defect: Managed[DefectModel] | None = None
        self.ocr: Managed[OcrModel] | None = None
        if DEFECT in config.ota.models and config.defects.enabled:
            self.defect = Managed(self._defect_swapper())
        if CRNN in config.ota.models:
            self.ocr = Managed(self._crnn_swapper())
        self.agent: OtaAgent[Any] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # carton id -> {model name: version that handled it}, until the scanner pair closes
        self._cartons: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._cartons_lock = threading.Lock()

    def _defect_swapper(self) -> Swapper[DefectModel]:
        from edge.vision.defects.model import DefectModel

        threads = self.config.defects.threads

        def load(path: Path, sha256: str, size: int) -> DefectModel:
            return DefectModel.load(path, sha256=sha256, threads=threads)

        return Swapper(
            SlotStore(self.ota_dir, DEFECT),
            load,
            defect_selftest(min_accuracy=self.config.ota.selftest_min_accuracy),
            events=lambda e: log.info("OTA defect: %s", e),
        )

    def _crnn_swapper(self) -> Swapper[OcrModel]:
        from edge.vision.ocr.crnn.runtime import CrnnRecognizer
        from edge.vision.ocr.reader import Reader
        from edge.vision.ocr.samples import SampleStore

        ocr = self.config.ocr
        holder: ModelHolder[OcrModel] = ModelHolder()

        def load(path: Path, sha256: str, size: int) -> OcrModel:
            recognizer = CrnnRecognizer(threads=ocr.threads, path=path, sha256=sha256)
            samples = None
            if self.samples is not None:  # the Reader only calls keep(): a narrow stand-in
                samples = cast(SampleStore, _ActingSamples(self.samples, holder, sha256))
            return OcrModel(recognizer, Reader(ocr, crnn=recognizer, samples=samples))

        return Swapper(
            SlotStore(self.ota_dir, CRNN),
            load,
            crnn_selftest(ocr, min_accuracy=self.config.ota.crnn_selftest_min_accuracy),
            holder,
            events=lambda e: log.info("OTA ocr.crnn: %s", e),
        )

    # -- compatibility: the defect model's holder -----------------------------------------------
    @property
    def managed(self) -> Managed[DefectModel]:
        if self.defect is None:
            raise DockgateError(ErrorCode.OTA_NOT_INSTALLED, "the defect model is not managed")
        return self.defect

    @property
    def swapper(self) -> Swapper[DefectModel]:
        return self.managed.swapper

    def models(self) -> dict[str, Managed[Any]]:
        """The managed model names and their state, as the agent follows them."""
        out: dict[str, Managed[Any]] = {}
        if self.defect is not None:
            out[DEFECT] = self.defect
        if self.ocr is not None:
            out[CRNN] = self.ocr
        return out

    # -- start-up -----------------------------------------------------------------------------
    def restore(self, name: str = DEFECT) -> Active[Any]:
        """The persisted slot of ``name`` (crash-loop aware), or the shipped model as its first
        slot (copied, verified against the manifest's sha256, self-tested)."""
        m = self.models().get(name)
        if m is None:
            raise DockgateError(ErrorCode.OTA_NOT_INSTALLED, f"{name} is not managed over the air")
        swapper: Swapper[Any] = m.swapper
        active, _previous = swapper.store.read()
        if active is not None:
            return swapper.restore()
        from edge.vision.session import model_entry

        entry = model_entry(name)
        size = entry.size if entry.size is not None else entry.path.stat().st_size
        shipped = VerifiedModel(name, entry.version, entry.path, entry.sha256, size, {})
        return swapper.install(shipped, move=False)

    def restore_all(self) -> dict[str, Active[Any]]:
        return {name: self.restore(name) for name in self.models()}

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
            self.models(),
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
        """The defect model for one carton (take it once per carton: switches land between)."""
        return self.managed.swapper.holder.current()

    def current_ocr(self) -> Active[OcrModel] | None:
        """The CRNN and its Reader for one carton (once per carton); None when not managed."""
        return self.ocr.swapper.holder.current() if self.ocr is not None else None

    def thresholds(self, model: DefectModel) -> tuple[float, float]:
        """(freeze, review): the config's when set, else the running model's own."""
        cfg = self.config.defects
        return (
            cfg.freeze_threshold or model.info.freeze_threshold,
            cfg.review_threshold or model.info.review_threshold,
        )

    def handled(self, carton_id: str, name: str, version: str) -> None:
        """``version`` of model ``name`` processed carton ``carton_id`` (for its scanner pair)."""
        with self._cartons_lock:
            self._cartons.setdefault(carton_id, {})[name] = version
            self._cartons.move_to_end(carton_id)
            while len(self._cartons) > _CARTONS_KEPT:
                self._cartons.popitem(last=False)

    def record(
        self,
        version: str,
        verdict: DefectVerdict | None,
        *,
        latency_ms: float,
        read_status: str | None = None,
        error: bool = False,
    ) -> None:
        """One carton through defect ``version`` (``error``: the model raised). Without an
        agent (not enrolled) there is nobody to report to and nothing is kept."""
        if self.agent is None or self.defect is None:
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

    def record_ocr(
        self, version: str, read: CartonRead | None, *, latency_ms: float, error: bool = False
    ) -> None:
        """One carton read by CRNN ``version`` (``error``: the reader raised). A read that is
        ``ERROR`` (an unusable image) is not the recogniser's doing and carries no confidence."""
        if self.agent is None or self.ocr is None:
            return
        usable = read is not None and read.status != "ERROR"
        self.agent.observe(
            CRNN,
            version,
            latency_ms=latency_ms,
            confidence=read.confidence if usable and read is not None else None,
            error=error,
            review=read is not None and read.status in ("REVIEW", "UNREADABLE"),
        )

    def shadow_check(self, image: Any, action: str) -> None:
        """Shadow mode: the shadow defect version on the same frame; never acted on."""
        shadow = self.defect.shadow if self.defect is not None else None
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

    def shadow_read(self, images: Sequence[Any], expect: Any, read: CartonRead) -> None:
        """Shadow mode for the CRNN: the shadow version reads the same frames; a different
        status or different fields count as a disagreement. Never acted on."""
        shadow = self.ocr.shadow if self.ocr is not None else None
        if shadow is None or self.ocr is None:
            return
        started = time.perf_counter()
        try:
            other = shadow.model.reader.read_frames(images, expect)
        except Exception:  # a shadow model crashing must never take the line down
            self.record_ocr(shadow.version, None, latency_ms=0.0, error=True)
            return
        self.record_ocr(shadow.version, other, latency_ms=(time.perf_counter() - started) * 1000)
        if _outcome(other) != _outcome(read):
            self.ocr.figures.disagreement(shadow.version)

    def on_pair(self, carton_id: str | None, agreed: bool) -> None:
        """A carton read by both the OCR (accepted) and the scanner: to the version of each
        managed model that handled it (the running one if the carton is not remembered)."""
        with self._cartons_lock:
            seen = self._cartons.pop(carton_id, {}) if carton_id is not None else {}
        for name, m in self.models().items():
            version = seen.get(name) or m.running()
            if version is not None:
                m.figures.agreement(version, 1, int(agreed))


def _outcome(read: CartonRead) -> tuple[str, tuple[str | None, ...]]:
    return read.status, tuple(getattr(read, k) for k in FIELDS)
