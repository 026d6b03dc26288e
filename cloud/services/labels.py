"""Labels of uploaded samples: validation, the labeling history, disputes, the work queue.

A sample (``samples`` row, uploaded by a device) is either a **code** crop (the default: the
OCR reader's REVIEW / UNREADABLE crops) or a **defect** frame (``metadata.kind == "defect"``).

- A code label is the text printed on the crop, checked by the project's one code grammar
  (:func:`edge.codes.parse_text`: forms, check digits, calendar dates) and stored normalised
  with its parsed fields. An operator's correction in the edge panel carries the confirmed
  *fields* (GTIN, lot, expiry), checked field by field with :func:`edge.codes.validate_field`
  exactly as the panel's review queue does; its text stays ``""`` (nobody transcribed the line).
- A defect label is one of :data:`DEFECT_CLASSES` (the classes ``dockgate models
  train-defect`` learns) and, for damage, optionally the box around it in image pixels.

History is never rewritten: labeling a sample again marks its live label ``superseded`` and adds
a new ``current`` one that names it (``supersedes``); a dispute marks the live label
``disputed`` (with who, when, why) and puts the sample back in the work queue until someone
labels it again. The sample row's ``status`` follows: ``new`` (no label), ``labeled``,
``disputed``. Every change is audited in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cloud.db.models import Label, Sample, utcnow
from cloud.services.audit import audit
from edge.contracts.errors import DockgateError, ErrorCode

# the defect model's classes, in its output order (edge/vision/defects/train.py CLASSES; that
# module needs torch, so the list is repeated here and a test keeps the two equal)
DEFECT_CLASSES = ("ok", "crack", "crush", "tear", "wet")
KINDS = ("code", "defect")
CODE_FIELDS = ("gtin", "lot", "expiry", "prod_date", "sscc")
MAX_TEXT = 200  # three printed lines of a carton code fit in far less
LIVE = ("current", "disputed")


@dataclass(frozen=True)
class Checked:
    """A label that passed validation: what gets stored."""

    kind: str
    value: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Issue:
    code: str
    message: str
    field: str | None = None
    line: int | None = None


# -- validation -------------------------------------------------------------------------------
def check_code_text(text: str) -> Checked:
    """A code line (or up to three lines) as printed: parsed by the code grammar, returned
    normalised with its canonical fields; ``CODE_INVALID`` with the first problem otherwise."""
    issues, checked = code_issues(text)
    if checked is None:
        first = issues[0]
        raise DockgateError(ErrorCode.CODE_INVALID, first.message, field=first.field)
    return checked


def code_issues(text: str) -> tuple[list[Issue], Checked | None]:
    """Everything wrong with ``text`` (for validation as one types), and the label if none."""
    from edge.codes import parse_text

    if len(text) > MAX_TEXT:
        return [Issue(ErrorCode.CODE_INVALID.value, f"longer than {MAX_TEXT} characters")], None
    parsed = parse_text(text)
    issues = [Issue(e.code.value, e.message, e.field, e.line) for e in parsed.errors]
    if not issues and not parsed.matches:
        issues.append(Issue(ErrorCode.CODE_INVALID.value, "no code field found in the text"))
    if issues:
        return issues, None
    return [], Checked("code", parsed.text, _canonical(parsed.fields))


def check_code_fields(fields: Mapping[str, Any]) -> Checked:
    """Fields typed by a person (the edge panel's review form): each checked with
    :func:`edge.codes.validate_field`; GTIN and lot are required, like the panel requires."""
    from edge.codes import validate_field

    unknown = sorted(set(fields) - set(CODE_FIELDS))
    if unknown:
        raise DockgateError(ErrorCode.CODE_INVALID, f"unknown code fields {unknown}")
    values = {k: str(v).strip() for k, v in fields.items() if v not in (None, "")}
    if not values.get("gtin") or not values.get("lot"):
        raise DockgateError(ErrorCode.CODE_INVALID, "GTIN and lot are required")
    out = {k: validate_field(k, v) for k, v in values.items()}
    return Checked("code", "", _canonical(out))


def check_defect(
    cls: str, box: Sequence[int] | None, image_size: tuple[int, int] | None
) -> Checked:
    """A defect class and optional box ``[x, y, w, h]`` (pixels) inside the image of
    ``image_size`` (width, height); ``LABEL_INVALID`` otherwise. ``ok`` takes no box."""
    issues = defect_issues(cls, box, image_size)
    if issues:
        raise DockgateError(ErrorCode.LABEL_INVALID, issues[0].message, field=issues[0].field)
    return Checked("defect", cls, {"box": [int(v) for v in box] if box else None})


def defect_issues(
    cls: str, box: Sequence[int] | None, image_size: tuple[int, int] | None
) -> list[Issue]:
    bad = ErrorCode.LABEL_INVALID.value
    if cls not in DEFECT_CLASSES:
        return [Issue(bad, f"class {cls!r} is not one of {', '.join(DEFECT_CLASSES)}", "class")]
    if box is None:
        return []
    if cls == "ok":
        return [Issue(bad, "a carton without damage has no damage box", "box")]
    if len(box) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in box):
        return [Issue(bad, "box is [x, y, width, height] in whole pixels", "box")]
    x, y, w, h = box
    if x < 0 or y < 0 or w < 2 or h < 2:
        return [Issue(bad, "box needs x, y >= 0 and a width and height of 2 pixels or more", "box")]
    if image_size is not None and (x + w > image_size[0] or y + h > image_size[1]):
        return [Issue(bad, f"box goes outside the {image_size[0]}x{image_size[1]} image", "box")]
    return []


def _canonical(fields: Mapping[str, Any]) -> dict[str, str]:
    """Field values as JSON strings (dates ISO), in the grammar's field order."""
    return {
        k: (v.isoformat() if isinstance(v, dt.date) else str(v))
        for k, v in sorted(fields.items(), key=lambda kv: CODE_FIELDS.index(kv[0]))
    }


def sample_kind(sample: Sample) -> str:
    kind = (sample.meta or {}).get("kind")
    return kind if kind in KINDS else "code"


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG, None if it cannot be decoded."""
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return None if img is None else (int(img.shape[1]), int(img.shape[0]))


# -- history ------------------------------------------------------------------------------------
def live_label(s: Session, sample_pk: int) -> Label | None:
    """The sample's label that is not superseded (current or disputed), if any."""
    return s.execute(
        select(Label).where(Label.sample_pk == sample_pk, Label.status.in_(LIVE))
    ).scalar_one_or_none()


def history(s: Session, sample_pk: int) -> list[Label]:
    """Every label the sample ever had, oldest first."""
    return list(
        s.execute(select(Label).where(Label.sample_pk == sample_pk).order_by(Label.id)).scalars()
    )


def add_label(
    s: Session,
    sample: Sample,
    checked: Checked,
    who: str,
    *,
    note: str = "",
    replaces: int | None = None,
) -> Label:
    """Make ``checked`` the sample's current label; the previous one is superseded.

    ``replaces`` (optional) is the label id the caller saw as the sample's live label (``0``:
    none): if someone labeled the sample meanwhile, ``LABEL_INVALID`` instead of silently
    overwriting their work. The caller holds the sample row locked (``with_for_update``).
    """
    if checked.kind != sample_kind(sample):
        raise DockgateError(
            ErrorCode.LABEL_INVALID,
            f"sample {sample.id} is a {sample_kind(sample)} sample, not a {checked.kind} one",
        )
    old = live_label(s, sample.id)
    if replaces is not None and (old.id if old else 0) != replaces:
        now = f"label {old.id}" if old else "no label"
        raise DockgateError(
            ErrorCode.LABEL_INVALID, f"sample {sample.id} has {now} now; reload and label again"
        )
    if old is not None:
        old.status = "superseded"
        s.flush()  # before the insert: the partial unique index allows one live label
    row = Label(
        sample_pk=sample.id,
        kind=checked.kind,
        value=checked.value,
        fields=checked.fields,
        who=who,
        at=utcnow(),
        status="current",
        supersedes=old.id if old else None,
        note=note[:500],
    )
    s.add(row)
    sample.status = "labeled"
    s.flush()
    audit(s, who, "label.add", None, sample=sample.id, label=row.id, kind=row.kind,
          supersedes=row.supersedes)  # fmt: skip
    return row


def dispute(s: Session, label_id: int, who: str, reason: str) -> Label:
    """Mark a current label as disputed: it stays the sample's label (history is kept) but the
    sample goes back to the work queue until someone labels it again."""
    row = s.get(Label, label_id, with_for_update=True)
    if row is None:
        raise DockgateError(ErrorCode.NOT_FOUND, f"no label {label_id}")
    if row.status != "current":
        raise DockgateError(
            ErrorCode.LABEL_INVALID, f"label {label_id} is {row.status}; only a current one"
        )
    sample = s.get(Sample, row.sample_pk, with_for_update=True)
    assert sample is not None  # a foreign key
    row.status = "disputed"
    row.disputed_by, row.disputed_at, row.dispute_reason = who, utcnow(), reason[:500]
    sample.status = "disputed"
    audit(s, who, "label.dispute", None, sample=sample.id, label=row.id, reason=reason[:200])
    return row


def queue(s: Session, kind: str | None = None, limit: int = 50, after: int = 0) -> list[Sample]:
    """Samples waiting for a label (never labeled, or their label disputed), oldest first;
    ``after`` is the last sample id of the previous page."""
    query = select(Sample).where(Sample.status.in_(("new", "disputed")), Sample.id > after)
    if kind is not None:
        declared = Sample.meta["kind"].as_string()  # JSON_EXTRACT on SQLite, ->> on PostgreSQL
        is_defect = declared == "defect"
        query = query.where(is_defect if kind == "defect" else or_(declared.is_(None), ~is_defect))
    return list(s.execute(query.order_by(Sample.id).limit(limit)).scalars())


# -- labels that arrive with the sample -----------------------------------------------------------
def edge_label(meta: Mapping[str, Any]) -> Checked | None:
    """The label an edge sample carries, if any, validated; ``None`` when it carries none.

    The edge panel's review queue keeps a corrected sample with ``label`` = the confirmed fields
    (``{"gtin": ..., "lot": ..., "expiry": ...}``), ``labeled_by`` and ``labeled_at``. Also
    accepted: ``label`` = ``{"text": "..."}`` (a transcribed line) or ``{"kind": "defect",
    "class": ..., "box": [...]}``. An invalid one raises (``CODE_INVALID`` / ``LABEL_INVALID``).
    """
    raw = meta.get("label")
    if raw in (None, "", {}):
        return None
    if isinstance(raw, str):
        return check_code_text(raw)
    if not isinstance(raw, Mapping):
        raise DockgateError(ErrorCode.LABEL_INVALID, "label is neither text nor an object")
    if raw.get("kind") == "defect":
        box = raw.get("box")
        return check_defect(str(raw.get("class", "")), list(box) if box else None, None)
    if "text" in raw:
        return check_code_text(str(raw["text"]))
    return check_code_fields({k: v for k, v in raw.items() if k != "kind"})


def label_from_device(s: Session, sample: Sample, device_id: str) -> Label | None:
    """Store the label an uploaded sample carries (who = the device; the edge operator and time
    go in the note). An invalid one is audited and the sample stays unlabeled: its image is
    still worth labeling here."""
    meta = sample.meta or {}
    try:
        checked = edge_label(meta)
        if checked is None:
            return None
        note = "edge panel"
        if meta.get("labeled_by"):
            note += f": {str(meta['labeled_by'])[:80]}"
        if meta.get("labeled_at"):
            note += f" at {str(meta['labeled_at'])[:40]}"
        return add_label(s, sample, checked, f"device:{device_id}", note=note)
    except DockgateError as exc:
        audit(s, f"device:{device_id}", "label.refused", exc.code, sample=sample.id,
              detail=exc.message[:200])  # fmt: skip
        return None
