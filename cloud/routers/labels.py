"""Labeling API for people (JSON, session bearer token, role labeler, qa or admin).

- ``GET  /v1/labels/queue``: samples waiting for a label (never labeled, or disputed).
- ``GET  /v1/samples/{id}``: one sample with its label history, oldest first.
- ``GET  /v1/samples/{id}/image``: its image bytes (from the blob store).
- ``POST /v1/samples/{id}/labels``: label it (a code text, or a defect class and box).
- ``POST /v1/labels/{label_id}/dispute``: question a current label; the sample is queued again.
- ``POST /v1/labels/validate``: check a label without storing it (the labeling page calls it
  as the person types); always 200, with the problems found.

Refusals carry stable codes: ``CODE_INVALID`` (the code grammar or a check digit says no),
``LABEL_INVALID`` (wrong kind for the sample, unknown class, box outside the image, the label
replaced or disputed is not current any more), ``NOT_FOUND``, ``FORBIDDEN``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from cloud import auth
from cloud.db.models import Label, Sample
from cloud.deps import AuthHeader, Services, Svc
from cloud.services import labels
from cloud.services.blobs import blob_store_for
from edge.contracts.errors import DockgateError, ErrorCode

router = APIRouter(tags=["labels"])

ROW_ID = 2**31 - 1  # ids are 32-bit INTEGER columns (PostgreSQL's int4): larger is no row
SampleId = Annotated[int, Path(ge=1, le=ROW_ID, description="the cloud's sample id")]
LabelId = Annotated[int, Path(ge=1, le=ROW_ID, description="a label id")]
Pixel = Annotated[int, Field(ge=0, le=100_000)]


class LabelOut(BaseModel):
    id: int
    sample: int
    kind: str
    value: str = Field(..., description="code: text as printed ('' if only fields); defect: class")
    fields: dict[str, Any] = Field(..., description="code: parsed fields; defect: {box}")
    who: str
    at: str
    status: Literal["current", "disputed", "superseded"]
    supersedes: int | None
    note: str
    disputed_by: str | None
    disputed_at: str | None
    dispute_reason: str | None


class SampleOut(BaseModel):
    id: int
    kind: Literal["code", "defect"]
    device_id: str
    site: str
    sample_id: str
    sha256: str
    content_type: str
    status: str = Field(..., description="new | labeled | disputed")
    read_status: str | None
    confidence: float | None
    model_version: str | None
    captured_at: str | None
    received_at: str
    suggestion: str = Field(..., description="what the reader read (the text to confirm)")
    label: LabelOut | None = Field(None, description="the live label (current or disputed)")


class SampleDetail(SampleOut):
    history: list[LabelOut]


class LabelIn(BaseModel):
    kind: Literal["code", "defect"]
    text: str | None = Field(None, max_length=labels.MAX_TEXT, description="code: as printed")
    fields: dict[str, str] | None = Field(
        None, description="code, instead of text: gtin, lot, expiry... as typed"
    )
    cls: str | None = Field(None, alias="class", max_length=16, description="defect class")
    box: list[Pixel] | None = Field(
        None, max_length=4, description="defect: [x, y, width, height] in pixels"
    )
    note: str = Field("", max_length=500)
    replaces: int | None = Field(
        None,
        ge=0,
        le=ROW_ID,
        description="the live label id you saw (0: none); refused if it changed",
    )


class DisputeIn(BaseModel):
    reason: str = Field(..., min_length=3, max_length=500)


class IssueOut(BaseModel):
    code: str
    message: str
    field: str | None = None
    line: int | None = None


class ValidateOut(BaseModel):
    ok: bool
    value: str = Field("", description="the normalised text (code) or class (defect)")
    fields: dict[str, Any] = Field(default_factory=dict)
    issues: list[IssueOut] = Field(default_factory=list)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def label_out(row: Label) -> LabelOut:
    return LabelOut(
        id=row.id,
        sample=row.sample_pk,
        kind=row.kind,
        value=row.value,
        fields=row.fields,
        who=row.who,
        at=_iso(row.at) or "",
        status=row.status,
        supersedes=row.supersedes,
        note=row.note,
        disputed_by=row.disputed_by,
        disputed_at=_iso(row.disputed_at),
        dispute_reason=row.dispute_reason,
    )


def sample_out(row: Sample, live: Label | None = None) -> dict[str, Any]:
    meta = row.meta or {}
    return {
        "id": row.id,
        "kind": labels.sample_kind(row),
        "device_id": row.device_id,
        "site": row.site,
        "sample_id": row.sample_id,
        "sha256": row.sha256,
        "content_type": row.content_type,
        "status": row.status,
        "read_status": row.read_status,
        "confidence": row.confidence,
        "model_version": row.model_version,
        "captured_at": _iso(row.captured_at),
        "received_at": _iso(row.received_at) or "",
        "suggestion": str(meta.get("text") or "")[: labels.MAX_TEXT],
        "label": label_out(live) if live is not None else None,
    }


def _person(s: Session, authorization: str | None) -> auth.Caller:
    caller = auth.person(s, authorization)
    auth.require_any(caller, auth.LABELERS)
    return caller


def _sample(s: Session, sample_pk: int, lock: bool = False) -> Sample:
    row = s.get(Sample, sample_pk, with_for_update=lock)
    if row is None:
        raise DockgateError(ErrorCode.NOT_FOUND, f"no sample {sample_pk}")
    return row


def _checked(svc: Services, sample: Sample, body: LabelIn) -> labels.Checked:
    if body.kind == "code":
        if body.text is not None:
            return labels.check_code_text(body.text)
        if body.fields is not None:
            return labels.check_code_fields(body.fields)
        raise DockgateError(ErrorCode.CODE_INVALID, "a code label needs text or fields")
    size = None
    if body.box:
        size = labels.image_size(blob_store_for(svc.config).get(sample.sha256))
    return labels.check_defect(body.cls or "", body.box, size)


@router.get("/v1/labels/queue", response_model=list[SampleOut])
def label_queue(
    *,
    authorization: AuthHeader,
    svc: Svc,
    kind: Literal["code", "defect"] | None = None,
    limit: int = Query(50, ge=1, le=500),
    after: int = Query(0, ge=0, le=ROW_ID, description="last sample id of the previous page"),
) -> list[dict[str, Any]]:
    """Samples waiting for a label, oldest first (a disputed sample shows its disputed label)."""
    with svc.reader() as s:
        _person(s, authorization)
        rows = labels.queue(s, kind, limit, after)
        return [sample_out(r, labels.live_label(s, r.id)) for r in rows]


@router.get("/v1/samples/{sample_pk}", response_model=SampleDetail)
def sample_detail(*, sample_pk: SampleId, authorization: AuthHeader, svc: Svc) -> dict[str, Any]:
    """One sample, its live label and its whole label history (oldest first)."""
    with svc.reader() as s:
        _person(s, authorization)
        row = _sample(s, sample_pk)
        past = labels.history(s, row.id)
        live = next((lb for lb in past if lb.status in labels.LIVE), None)
        return {**sample_out(row, live), "history": [label_out(lb) for lb in past]}


@router.get("/v1/samples/{sample_pk}/labels", response_model=list[LabelOut])
def sample_history(*, sample_pk: SampleId, authorization: AuthHeader, svc: Svc) -> list[LabelOut]:
    """The sample's labels, oldest first: who said what when, disputes included."""
    with svc.reader() as s:
        _person(s, authorization)
        _sample(s, sample_pk)
        return [label_out(lb) for lb in labels.history(s, sample_pk)]


@router.get(
    "/v1/samples/{sample_pk}/image",
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}},
    response_class=Response,
)
def sample_image(*, sample_pk: SampleId, authorization: AuthHeader, svc: Svc) -> Response:
    """The sample's image bytes, as the device sent them."""
    with svc.reader() as s:
        _person(s, authorization)
        row = _sample(s, sample_pk)
        sha256, content_type = row.sha256, row.content_type
    data = blob_store_for(svc.config).get(sha256)
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=content_type, headers=headers)


@router.post("/v1/samples/{sample_pk}/labels", response_model=LabelOut)
def post_label(
    *, sample_pk: SampleId, body: LabelIn, authorization: AuthHeader, svc: Svc
) -> LabelOut:
    """Label a sample: its current label (if any) is superseded and kept in the history."""
    with svc.sessions.begin() as s:
        caller = _person(s, authorization)
        sample = _sample(s, sample_pk, lock=True)
        checked = _checked(svc, sample, body)
        row = labels.add_label(
            s, sample, checked, caller.actor, note=body.note, replaces=body.replaces
        )
        return label_out(row)


@router.post("/v1/labels/{label_id}/dispute", response_model=LabelOut)
def dispute_label(
    *, label_id: LabelId, body: DisputeIn, authorization: AuthHeader, svc: Svc
) -> LabelOut:
    """Question a current label (with a reason): the sample goes back to the queue."""
    with svc.sessions.begin() as s:
        caller = _person(s, authorization)
        return label_out(labels.dispute(s, label_id, caller.actor, body.reason))


@router.post("/v1/labels/validate", response_model=ValidateOut)
def validate_label(*, body: LabelIn, authorization: AuthHeader, svc: Svc) -> ValidateOut:
    """Check a label as typed, store nothing. Code text goes through the code grammar (forms,
    check digits, dates); a defect box is checked for shape only (the image is not read)."""
    with svc.reader() as s:
        _person(s, authorization)
    if body.kind == "code":
        if body.fields is not None and body.text is None:
            try:
                checked = labels.check_code_fields(body.fields)
            except DockgateError as exc:
                field = exc.details.get("field")
                issue = IssueOut(
                    code=exc.code.value,
                    message=exc.message,
                    field=field if isinstance(field, str) else None,
                )
                return ValidateOut(ok=False, issues=[issue])
            return ValidateOut(ok=True, value=checked.value, fields=checked.fields)
        issues, ok = labels.code_issues(body.text or "")
        if ok is None:
            return ValidateOut(ok=False, issues=[IssueOut(**vars(i)) for i in issues])
        return ValidateOut(ok=True, value=ok.value, fields=ok.fields)
    found = labels.defect_issues(body.cls or "", body.box, None)
    if found:
        return ValidateOut(ok=False, issues=[IssueOut(**vars(i)) for i in found])
    return ValidateOut(ok=True, value=body.cls or "", fields={"box": body.box})
