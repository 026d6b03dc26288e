"""Datasets: versioned snapshots of the labeled samples, and their export for training.

**Members.** Every sample whose label is ``current``, one per distinct image (samples are
grouped by the SHA-256 of their bytes: the edge keeps a relabeled crop as a new sample with the
same bytes; the newest label of the group wins). A disputed label is under question, so its
sample is left out, unless the sample is in the regression set (below), where it stays with that
label, flagged ``disputed`` in the manifest.

**Split.** Stable and by content: the image's SHA-256 is hashed once more (with a fixed salt)
into a bucket ``0.0 <= b < 100.0``; ``b < regression_percent`` is the **regression** set,
``b < regression_percent + val_percent`` **val**, the rest **train**. The same image falls in
the same split in every snapshot and on every database. The regression set **only grows**:
every member of the previous snapshot's regression set stays in it (with its sample's label as
it is now), whatever the percentages of the new snapshot, so candidates are always judged on
every hard case ever frozen there.

**Identity.** The dataset id is the first 12 hex digits of the SHA-256 over its sorted member
lines ``"<image sha256> <label id> <split>\\n"``: the same members make the same id (creating a
snapshot when nothing changed returns the existing one), any new label makes a new id.

**Export format** (``dockgate cloud dataset export ID OUT``; written to a temporary folder and
renamed into place, so ``OUT`` is complete or absent)::

    OUT/
      manifest.json                 {"format": 1, "id", "digest", "created_at", "created_by",
                                     "parent", "val_percent", "regression_percent",
                                     "counts": {"code": {split: n}, "defect": {split: n}},
                                     "defect_classes", "members": [{"sha256", "file", "kind",
                                     "split", "sample", "label", "value", "fields", "who", "at",
                                     "disputed", "device", "site", "model_version",
                                     "read_status"}]}
      codes/<split>/<sha256>.png    code crops (``.jpg`` for JPEG samples)
      codes/<split>/labels.json     {"<sha256>.png": "<text>"}: the transcribed single lines,
                                    what ``dockgate models train-codes --data codes/train`` reads
      codes/<split>/labels.jsonl    every code member, one JSON object a line: {"file", "text",
                                    "fields", "sample", "label"}; fields-only labels (operator
                                    corrections: ``text`` null) are here and not in labels.json
      defects/<split>/<class>/<sha256>.png
                                    defect frames, one folder per class: what ``dockgate models
                                    train-defect --data defects/train`` reads
      defects/<split>/boxes.jsonl   {"file": "<class>/<sha256>.png", "class", "box", "sample",
                                    "label"} (box [x, y, w, h] in pixels, or null)

``<split>`` is ``train``, ``val`` or ``regression``; a split without members has no folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import Dataset, DatasetMember, Label, Sample, utcnow
from cloud.services.audit import audit
from cloud.services.blobs import BlobStore
from cloud.services.labels import DEFECT_CLASSES, LIVE, sample_kind
from edge.contracts.errors import DockgateError, ErrorCode

FORMAT = 1
SPLITS = ("train", "val", "regression")
ID_HEX = 12
_SALT = b"dockgate-dataset-split-v1:"


def bucket(sha256: str) -> float:
    """The image's place in ``[0, 100)``, the same everywhere and forever (0.01 steps)."""
    h = hashlib.sha256(_SALT + sha256.encode()).digest()
    return int.from_bytes(h[:8], "big") % 10_000 / 100.0


def split_of(sha256: str, val_percent: float, regression_percent: float) -> str:
    b = bucket(sha256)
    if b < regression_percent:
        return "regression"
    return "val" if b < regression_percent + val_percent else "train"


@dataclass(frozen=True)
class Member:
    sha256: str
    sample_pk: int
    label_id: int
    split: str

    def line(self) -> str:
        return f"{self.sha256} {self.label_id} {self.split}\n"


def digest(members: Iterable[Member]) -> str:
    h = hashlib.sha256()
    for line in sorted(m.line() for m in members):
        h.update(line.encode())
    return h.hexdigest()


def latest(s: Session) -> Dataset | None:
    return s.execute(
        select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id.desc()).limit(1)
    ).scalar_one_or_none()


def plan(
    s: Session, val_percent: float = 10.0, regression_percent: float = 10.0
) -> tuple[list[Member], Dataset | None]:
    """The members a snapshot taken now would have, and the snapshot it follows."""
    if not (min(val_percent, regression_percent) >= 0 and val_percent + regression_percent < 100):
        raise DockgateError(
            ErrorCode.CONFIG_INVALID, "val and regression percentages must add up to under 100"
        )
    parent = latest(s)
    frozen: set[str] = set()
    if parent is not None:
        frozen = set(
            s.execute(
                select(DatasetMember.sha256).where(
                    DatasetMember.dataset_id == parent.id, DatasetMember.split == "regression"
                )
            ).scalars()
        )
    rows = s.execute(
        select(Label, Sample)
        .join(Sample, Sample.id == Label.sample_pk)
        .where(Label.status.in_(LIVE))
        .order_by(Label.id)
    ).all()
    newest: dict[str, tuple[Label, Sample]] = {}
    for label, sample in rows:  # ordered by label id: a later label of the same image wins
        if label.status == "current" or sample.sha256 in frozen:
            newest[sample.sha256] = (label, sample)
    members = []
    for sha, (label, sample) in sorted(newest.items()):
        split = "regression" if sha in frozen else split_of(sha, val_percent, regression_percent)
        members.append(Member(sha, sample.id, label.id, split))
    return members, parent


def create(
    s: Session,
    actor: str,
    val_percent: float = 10.0,
    regression_percent: float = 10.0,
    note: str = "",
) -> tuple[Dataset, bool]:
    """Snapshot the labeled samples now; returns (dataset, created). With the same members as
    an existing snapshot, that one is returned (``created`` False)."""
    members, parent = plan(s, val_percent, regression_percent)
    if not members:
        raise DockgateError(ErrorCode.NOT_FOUND, "no labeled samples: nothing to snapshot")
    full = digest(members)
    existing = s.execute(select(Dataset).where(Dataset.digest == full)).scalar_one_or_none()
    if existing is not None:
        return existing, False
    short = full[:ID_HEX]
    if s.get(Dataset, short) is not None:  # 2^-48: would need a longer id, never silently mix
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"dataset id {short} collides")
    kinds = {m.sample_pk: _kind(s, m.sample_pk) for m in members}
    counts: dict[str, dict[str, int]] = {"code": {}, "defect": {}}
    for m in members:
        bucket_counts = counts[kinds[m.sample_pk]]
        bucket_counts[m.split] = bucket_counts.get(m.split, 0) + 1
    row = Dataset(
        id=short,
        digest=full,
        created_at=utcnow(),
        created_by=actor,
        parent=parent.id if parent else None,
        val_percent=val_percent,
        regression_percent=regression_percent,
        counts=counts,
        note=note[:500],
    )
    s.add(row)
    s.flush()
    s.add_all(
        DatasetMember(
            dataset_id=short,
            sha256=m.sha256,
            sample_pk=m.sample_pk,
            label_id=m.label_id,
            split=m.split,
        )
        for m in members
    )
    s.flush()
    audit(s, actor, "dataset.create", None, dataset=short, members=len(members),
          parent=row.parent)  # fmt: skip
    return row, True


def _kind(s: Session, sample_pk: int) -> str:
    sample = s.get(Sample, sample_pk)
    assert sample is not None
    return sample_kind(sample)


def get(s: Session, dataset_id: str) -> Dataset:
    row = s.get(Dataset, dataset_id)
    if row is None:
        raise DockgateError(ErrorCode.NOT_FOUND, f"no dataset {dataset_id}")
    return row


def listing(s: Session) -> list[Dataset]:
    """Every snapshot, newest first."""
    return list(
        s.execute(select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id.desc())).scalars()
    )


def members_of(s: Session, dataset_id: str) -> list[tuple[DatasetMember, Label, Sample]]:
    rows = s.execute(
        select(DatasetMember, Label, Sample)
        .join(Label, Label.id == DatasetMember.label_id)
        .join(Sample, Sample.id == DatasetMember.sample_pk)
        .where(DatasetMember.dataset_id == dataset_id)
        .order_by(DatasetMember.sha256)
    ).all()
    return [(m, lb, sm) for m, lb, sm in rows]


# -- export ------------------------------------------------------------------------------------
def export(s: Session, dataset_id: str, blobs: BlobStore, out: Path) -> dict[str, Any]:
    """Write the dataset to ``out`` in the documented folder format; returns the manifest.

    ``out`` must not exist (or be an empty directory). The images come from the blob store and
    are checked against their SHA-256 on the way.
    """
    ds = get(s, dataset_id)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.part-", dir=out.parent))
    try:
        manifest = _write(s, ds, blobs, tmp)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _write(s: Session, ds: Dataset, blobs: BlobStore, root: Path) -> dict[str, Any]:
    # what the CRNN can learn: its classes are exactly the grammar's characters (a test holds
    # the two equal); the cloud imports nothing from edge but the contracts and the grammar
    from edge.codes import CHARSET

    entries: list[dict[str, Any]] = []
    code_texts: dict[str, dict[str, str]] = {}
    jsonl: dict[Path, list[str]] = {}
    for m, label, sample in members_of(s, ds.id):
        kind = sample_kind(sample)
        ext = ".jpg" if sample.content_type == "image/jpeg" else ".png"
        name = f"{m.sha256}{ext}"
        if kind == "code":
            rel = Path("codes") / m.split / name
            text = label.value or None
            learnable = bool(text) and all(c in CHARSET for c in text or "")
            if text and learnable:
                code_texts.setdefault(m.split, {})[name] = text
            line = {"file": name, "text": text, "fields": label.fields, "sample": sample.id,
                    "label": label.id}  # fmt: skip
            jsonl.setdefault(root / "codes" / m.split / "labels.jsonl", []).append(_json(line))
        else:
            rel = Path("defects") / m.split / label.value / name
            box = (label.fields or {}).get("box")
            line = {"file": f"{label.value}/{name}", "class": label.value, "box": box,
                    "sample": sample.id, "label": label.id}  # fmt: skip
            jsonl.setdefault(root / "defects" / m.split / "boxes.jsonl", []).append(_json(line))
        data = blobs.get(m.sha256)
        if hashlib.sha256(data).hexdigest() != m.sha256:
            raise DockgateError(ErrorCode.SAMPLE_INVALID, f"blob {m.sha256} is damaged")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        entries.append(
            {
                "sha256": m.sha256,
                "file": rel.as_posix(),
                "kind": kind,
                "split": m.split,
                "sample": sample.id,
                "label": label.id,
                "value": label.value,
                "fields": label.fields,
                "who": label.who,
                "at": _iso(label.at),
                "disputed": label.status == "disputed",
                "device": sample.device_id,
                "site": sample.site,
                "model_version": sample.model_version,
                "read_status": sample.read_status,
            }
        )
    for split, texts in code_texts.items():
        path = root / "codes" / split / "labels.json"
        path.write_text(json.dumps(texts, ensure_ascii=False, indent=0, sort_keys=True) + "\n")
    for path, lines in jsonl.items():
        path.write_text("".join(lines), encoding="utf-8")
    manifest = {
        "format": FORMAT,
        "id": ds.id,
        "digest": ds.digest,
        "created_at": _iso(ds.created_at),
        "created_by": ds.created_by,
        "parent": ds.parent,
        "note": ds.note,
        "val_percent": ds.val_percent,
        "regression_percent": ds.regression_percent,
        "counts": ds.counts,
        "defect_classes": list(DEFECT_CLASSES),
        "members": entries,
    }
    (root / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return manifest


def _json(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n"


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
