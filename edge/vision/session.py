"""ONNX Runtime sessions for Dockgate's models: verified, thread-limited and warmed up.

The one way any vision code loads a model file. Generic on purpose (OCR and the defect model both
use it): ``path + expected sha256 + threads -> warmed-up InferenceSession``. A file whose sha256
differs from what the manifest says is never loaded, so a truncated copy or an unsigned swap of a
model file fails loudly with ``MODEL_INVALID`` instead of producing quietly wrong reads.

``models/manifest.json`` maps a model name to its file, version and sha256::

    {"schema": 1, "models": {"ocr.rec": {"file": "ocr/rec.onnx", "version": "...",
                                          "sha256": "...", "bytes": 123, ...}}}

Extra keys in an entry (source, notes, input shapes) are kept in :attr:`ModelEntry.extra`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edge.contracts.errors import DockgateError, ErrorCode

#: The repository's model directory (artifacts only, not a package).
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
MANIFEST_NAME = "manifest.json"
_CHUNK = 1 << 20
# onnxruntime's session construction is not cheap and two threads racing to load the same model
# would double peak memory on a small box; one lock serialises loads (as inference's locked_load).
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelEntry:
    """One model file named in the manifest."""

    name: str
    path: Path
    version: str
    sha256: str
    size: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(models_dir: Path = MODELS_DIR) -> dict[str, ModelEntry]:
    """Parse ``<models_dir>/manifest.json``; raises ``MODEL_INVALID`` if it is unusable."""
    path = models_dir / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        models = data["models"]
        if not isinstance(models, dict):
            raise TypeError("'models' is not an object")
        return {name: _entry(models_dir, name, raw) for name, raw in models.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DockgateError(
            ErrorCode.MODEL_INVALID, f"model manifest {path} is unusable: {exc}"
        ) from None


def write_manifest_entry(
    manifest: Path,
    key: str,
    onnx_path: Path,
    *,
    version: str,
    sha256: str,
    size: int,
    described: Mapping[str, Any],
) -> None:
    """Set model ``key``'s entry in ``manifest`` (the others untouched), atomically: a reader
    never sees a half-written file. Creates the manifest if it does not exist.

    Every entry names its file and model card relative to the manifest, its version, sha256
    and size; ``described`` adds what the model is (kind, input, output, licence...)."""
    import os
    import tempfile

    rel = onnx_path.resolve().relative_to(manifest.parent.resolve())
    entry = {"file": rel.as_posix(), "version": version, "sha256": sha256, "bytes": size}
    entry |= dict(described)
    entry["card"] = (rel.parent / "MODEL_CARD.md").as_posix()
    data: dict[str, Any] = {"schema": 1, "models": {}}
    if manifest.exists():
        data = json.loads(manifest.read_text(encoding="utf-8"))
    data.setdefault("models", {})[key] = entry
    fd, tmp = tempfile.mkstemp(dir=manifest.parent, prefix=".manifest.", suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    os.chmod(tmp, 0o644)
    Path(tmp).replace(manifest)


def seal_onnx(exported: Path, path: Path, meta: Mapping[str, str], producer: str) -> None:
    """Turn a freshly exported ONNX file into a shipped one: the model contract in its metadata
    (replacing the exporter's), the producer's name, ONNX's checker, then an atomic move to
    ``path`` so readers never see a half-written model. ``exported`` is removed."""
    import onnx

    proto = onnx.load(str(exported))
    exported.unlink()
    del proto.metadata_props[:]
    for key, value in sorted(meta.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = producer
    onnx.checker.check_model(proto)
    part = path.with_suffix(".onnx.part")
    onnx.save(proto, str(part))
    part.replace(path)


def onnx_metadata(path: Path) -> dict[str, str]:
    """The metadata :func:`seal_onnx` wrote into ``path`` (``version``, ``train_config``, ...),
    read without an inference session; ``{}`` when the file is missing or not ONNX."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # missing, truncated or foreign: onnx raises various types
        return {}
    return {p.key: p.value for p in proto.metadata_props}


def _entry(models_dir: Path, name: str, raw: Mapping[str, Any]) -> ModelEntry:
    known = {"file", "version", "sha256", "bytes"}
    sha = str(raw["sha256"]).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"{name}: sha256 is not 64 hex digits")
    rel = Path(str(raw["file"]))
    if rel.is_absolute() or ".." in rel.parts:
        # The manifest may come from an OTA release; never let it point outside models/.
        raise ValueError(f"{name}: file must be a relative path inside the models directory")
    size = raw.get("bytes")
    return ModelEntry(
        name=name,
        path=models_dir / rel,
        version=str(raw["version"]),
        sha256=sha,
        size=int(size) if size is not None else None,
        extra={k: v for k, v in raw.items() if k not in known},
    )


def model_entry(name: str, models_dir: Path = MODELS_DIR) -> ModelEntry:
    """The manifest entry ``name``; ``MODEL_INVALID`` if the manifest does not list it."""
    entries = read_manifest(models_dir)
    if name not in entries:
        raise DockgateError(ErrorCode.MODEL_INVALID, f"model '{name}' is not in the manifest")
    return entries[name]


def verify_file(path: Path, sha256: str, size: int | None = None) -> None:
    """Raise ``MODEL_INVALID`` unless ``path`` exists with the expected size and sha256."""
    try:
        actual_size = path.stat().st_size
    except OSError as exc:
        raise DockgateError(ErrorCode.MODEL_INVALID, f"model file {path}: {exc}") from None
    if size is not None and actual_size != size:
        raise DockgateError(
            ErrorCode.MODEL_INVALID,
            f"model file {path} has {actual_size} bytes, the manifest says {size}",
        )
    actual = sha256_file(path)
    if actual != sha256.lower():
        raise DockgateError(
            ErrorCode.MODEL_INVALID,
            f"model file {path} sha256 {actual[:12]}… differs from the manifest's {sha256[:12]}…",
        )


def session_options(threads: int) -> ort.SessionOptions:
    """Options for a small CPU box: fixed intra-op threads, one inter-op thread, full graph opt."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning worker threads burn a core between calls; on 2 shared cores that starves the
    # camera, ledger and MQTT threads, so let them sleep.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def load_session(
    path: Path,
    sha256: str,
    *,
    threads: int = 2,
    size: int | None = None,
    warmup: Mapping[str, np.ndarray] | None = None,
) -> ort.InferenceSession:
    """Verify ``path`` against ``sha256``, open it on the CPU and run one warm-up inference.

    ``warmup`` maps input names to sample arrays; inputs not given get zeros, with every dynamic
    dimension set to 1 (batch) or 32 (anything else). Raises ``MODEL_INVALID`` on a bad file.
    """
    if not 1 <= threads <= 64:
        raise ValueError(f"threads must be 1..64, got {threads}")
    verify_file(path, sha256, size)
    with _LOAD_LOCK:
        try:
            session = ort.InferenceSession(
                str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors on corrupt files
            raise DockgateError(
                ErrorCode.MODEL_INVALID, f"model file {path} does not load: {exc}"
            ) from None
        feeds = {i.name: _warmup_input(i, warmup) for i in session.get_inputs()}
        session.run(None, feeds)
    return session


def load_model(
    name: str,
    *,
    threads: int = 2,
    models_dir: Path = MODELS_DIR,
    warmup: Mapping[str, np.ndarray] | None = None,
) -> tuple[ort.InferenceSession, ModelEntry]:
    """Load the manifest's model ``name``: the session and its entry (version, sha256, extras)."""
    entry = model_entry(name, models_dir)
    return load_session(
        entry.path, entry.sha256, threads=threads, size=entry.size, warmup=warmup
    ), entry


_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


def _warmup_input(arg: ort.NodeArg, given: Mapping[str, np.ndarray] | None) -> np.ndarray:
    if given is not None and arg.name in given:
        return given[arg.name]
    shape = [
        d if isinstance(d, int) and d > 0 else (1 if axis == 0 else 32)
        for axis, d in enumerate(arg.shape)
    ]
    return np.zeros(shape, dtype=_DTYPES.get(arg.type, np.float32))
