"""The console's labeling page: one sample at a time, keyboard first.

- Code crop: the reader's text (or the current label) is in the input, selected, so **Enter
  confirms** it and **typing replaces** it; as one types, the page asks
  ``POST /console/label/validate`` (the code grammar: forms, check digits, dates) and shows the
  parsed fields or the first problem. The server checks again on save.
- Defect frame: keys **1-5** pick the class (ok, crack, crush, tear, wet), a **drag** on the
  image draws the damage box (**Esc** clears it), **Enter** saves.
- Saving goes to the next sample of the queue (never labeled, or disputed); **→** (or "Skip")
  leaves one for later. A sample's label history is listed under it, and its current label can
  be disputed with a reason.

Like the rest of the console it is server-rendered and works without script (forms post, the
server validates); its one script file (``label.js``, same origin, no inline script) adds the
keys, the live validation and the box. The page's CSP allows exactly that script and
same-origin requests. Every POST needs the session's CSRF token (form field, or the
``X-CSRF-Token`` header for the validation calls) and a same-site Origin. Needs the
``labeler``, ``qa`` or ``admin`` role (``cloud.auth.LABELERS``).
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from cloud import auth
from cloud.console.pages import (
    NAV,
    SECURITY_HEADERS,
    Who,
    _caller,
    _check_post,
    _error,
    _iso,
    _login_redirect,
    _page,
    _same_origin,
    _svc,
    csrf_token,
)
from cloud.db.models import Label, Sample
from cloud.problems import STATUS
from cloud.routers.labels import ROW_ID, LabelId, SampleId
from cloud.services import labels
from cloud.services.blobs import blob_store_for
from edge.contracts.errors import DockgateError, ErrorCode

HERE = Path(__file__).parent
router = APIRouter(prefix="/console", include_in_schema=False)

# the console's policy plus this page's own script and its same-origin validation calls
LABEL_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
LABEL_NAV = (*NAV, ("label", "/console/label"))
CLASS_KEYS = tuple((str(i + 1), c) for i, c in enumerate(labels.DEFECT_CLASSES))


def _labeler(request: Request, who: Who | None) -> Response | None:
    """The refusal for a person who may not label (None: they may)."""
    if who is None:
        return _login_redirect(request)
    if who[0].role not in auth.LABELERS:
        need = " or ".join(auth.LABELERS)
        return _error(request, ErrorCode.FORBIDDEN, f"needs role {need}", who)
    return None


def _render(
    request: Request,
    who: Who,
    sample_pk: int | None,
    after: int = 0,
    *,
    message: str | None = None,
    typed: dict[str, str] | None = None,
    done: str = "",
    status: int = 200,
) -> HTMLResponse:
    with _svc(request).reader() as s:
        waiting = s.execute(
            select(func.count()).select_from(Sample).where(Sample.status.in_(("new", "disputed")))
        ).scalar_one()
        if sample_pk is None:
            nxt = labels.queue(s, None, 1, after)
            sample = nxt[0] if nxt else None
        else:
            sample = s.get(Sample, sample_pk)
        context: dict[str, Any] = {
            "nav": LABEL_NAV,
            "waiting": waiting,
            "sample": None,
            "message": message,
            "done": done,
            "class_keys": CLASS_KEYS,
        }
        if sample is not None:
            past = labels.history(s, sample.id)
            live = next((lb for lb in past if lb.status in labels.LIVE), None)
            context.update(_sample_context(sample, live, past, typed or {}))
    response = _page(request, "label.html", context, who, status)
    response.headers["Content-Security-Policy"] = LABEL_CSP
    return response


def _sample_context(
    sample: Sample, live: Label | None, past: list[Label], typed: dict[str, str]
) -> dict[str, Any]:
    meta = sample.meta or {}
    kind = labels.sample_kind(sample)
    suggestion = str(meta.get("text") or "")[: labels.MAX_TEXT]
    text = typed.get("text")
    if text is None:
        text = live.value if live is not None and live.kind == "code" and live.value else suggestion
    box = typed.get("box")
    if box is None and live is not None and live.kind == "defect" and live.fields.get("box"):
        box = ",".join(str(v) for v in live.fields["box"])
    cls = typed.get("class") or (live.value if live is not None and live.kind == "defect" else "")
    return {
        "sample": {
            "id": sample.id,
            "kind": kind,
            "device": sample.device_id,
            "site": sample.site,
            "read_status": sample.read_status or "—",
            "confidence": f"{sample.confidence:.2f}" if sample.confidence is not None else "—",
            "model_version": sample.model_version or "—",
            "received": _iso(sample.received_at),
            "status": sample.status,
            "suggestion": suggestion,
        },
        "live": live,
        "history": [
            {
                "id": lb.id,
                "value": lb.value or "(fields only)",
                "fields": lb.fields,
                "who": lb.who,
                "at": _iso(lb.at),
                "status": lb.status,
                "note": lb.note,
                "dispute": f"{lb.disputed_by}: {lb.dispute_reason}" if lb.disputed_by else "",
            }
            for lb in reversed(past)
        ],
        "text": text,
        "cls": cls,
        "box": box or "",
        "replaces": live.id if live is not None else 0,
    }


# -- pages ---------------------------------------------------------------------------------------
@router.get("/label/static/{name}")
def label_static(name: str) -> Response:
    files = {"label.js": "text/javascript", "label.css": "text/css"}
    if name not in files:
        raise DockgateError(ErrorCode.NOT_FOUND, f"no file {name}")
    return FileResponse(HERE / "static" / name, media_type=files[name])


@router.get("/label", response_class=HTMLResponse)
def label_next(
    request: Request, after: int = Query(0, ge=0, le=ROW_ID), done: str = ""
) -> Response:
    """The next sample waiting for a label (after sample ``after``, to skip one)."""
    who = _caller(request)
    refusal = _labeler(request, who)
    if refusal is not None:
        return refusal
    assert who is not None
    return _render(request, who, None, max(after, 0), done=done[:40])


@router.get("/label/{sample_pk}", response_class=HTMLResponse)
def label_sample(request: Request, sample_pk: SampleId) -> Response:
    """One sample (for re-labeling or looking at its history)."""
    who = _caller(request)
    refusal = _labeler(request, who)
    if refusal is not None:
        return refusal
    assert who is not None
    with _svc(request).reader() as s:
        if s.get(Sample, sample_pk) is None:
            return _error(request, ErrorCode.NOT_FOUND, f"no sample {sample_pk}", who)
    return _render(request, who, sample_pk)


@router.get("/label/{sample_pk}/image")
def label_image(request: Request, sample_pk: SampleId) -> Response:
    who = _caller(request)
    if who is None or who[0].role not in auth.LABELERS:
        return Response(status_code=403)
    svc = _svc(request)
    with svc.reader() as s:
        row = s.get(Sample, sample_pk)
        if row is None:
            return Response(status_code=404)
        sha256, content_type = row.sha256, row.content_type
    data = blob_store_for(svc.config).get(sha256)
    headers = {**SECURITY_HEADERS, "Cache-Control": "private, max-age=3600"}
    return Response(data, media_type=content_type, headers=headers)


def _form_label(form: Any, svc: Any, sample: Sample) -> tuple[labels.Checked, dict[str, str]]:
    """The label the form says (checked), and what was typed (to show again on refusal)."""
    typed = {
        "text": str(form.get("text", ""))[: labels.MAX_TEXT + 50],
        "class": str(form.get("class", ""))[:16],
        "box": str(form.get("box", ""))[:60],
    }
    try:
        if labels.sample_kind(sample) == "code":
            return labels.check_code_text(typed["text"]), typed
        box = _parse_box(typed["box"])
        size = None
        if box is not None:
            size = labels.image_size(blob_store_for(svc.config).get(sample.sha256))
        return labels.check_defect(typed["class"], box, size), typed
    except DockgateError as exc:
        exc.details["typed"] = typed
        raise


def _parse_box(raw: str) -> list[int] | None:
    if not raw.strip():
        return None
    try:
        return [round(float(v)) for v in raw.split(",")]
    except ValueError:
        raise DockgateError(ErrorCode.LABEL_INVALID, "box is x,y,width,height") from None


@router.post("/label/validate")  # before /label/{sample_pk}: "validate" is no id
async def validate(request: Request) -> Response:
    """Validation as one types (the page's script): JSON ``{kind, text | class, box}`` in,
    ``{ok, value, fields, issues}`` out; needs the ``X-CSRF-Token`` header."""
    who = _caller(request)
    if who is None:
        return JSONResponse({"code": "UNAUTHENTICATED"}, status_code=401)
    sent = request.headers.get("x-csrf-token", "")
    if not _same_origin(request) or not hmac.compare_digest(sent, csrf_token(who[1])):
        return JSONResponse({"code": ErrorCode.CSRF_INVALID.value}, status_code=403)
    if who[0].role not in auth.LABELERS:
        return JSONResponse({"code": ErrorCode.FORBIDDEN.value}, status_code=403)
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"code": ErrorCode.EVENT_INVALID.value}, status_code=422)
    if body.get("kind") == "defect":
        raw_box = body.get("box")
        box = raw_box if isinstance(raw_box, list) else None
        issues = labels.defect_issues(str(body.get("class", ""))[:16], box, None)
        result: dict[str, Any] = {"ok": not issues, "value": body.get("class", ""), "fields": {}}
    else:
        issues, checked = labels.code_issues(str(body.get("text", ""))[: labels.MAX_TEXT + 50])
        result = {
            "ok": checked is not None,
            "value": checked.value if checked else "",
            "fields": checked.fields if checked else {},
        }
    result["issues"] = [vars(i) for i in issues]
    return JSONResponse(result, headers={"Cache-Control": "no-store"})


@router.post("/label/{sample_pk}", response_class=HTMLResponse)
async def post_label(request: Request, sample_pk: SampleId) -> Response:
    """Save the label (CSRF-checked); on to the next sample, or the page again with the
    problem when the grammar or the box check says no."""
    who, form, refusal = await _check_post(request)
    if refusal is not None:
        return refusal
    refusal = _labeler(request, who)
    if refusal is not None:
        return refusal
    assert who is not None
    caller = who[0]
    svc = _svc(request)
    replaces_raw = str(form.get("replaces", ""))
    replaces = int(replaces_raw) if replaces_raw.isdigit() else None

    def save() -> None:
        with svc.sessions.begin() as s:
            sample = s.get(Sample, sample_pk, with_for_update=True)
            if sample is None:
                raise DockgateError(ErrorCode.NOT_FOUND, f"no sample {sample_pk}")
            checked, _ = _form_label(form, svc, sample)
            labels.add_label(s, sample, checked, caller.actor, replaces=replaces)

    try:
        await run_in_threadpool(save)
    except DockgateError as exc:
        if exc.code is ErrorCode.NOT_FOUND:
            return _error(request, exc.code, exc.message, who)
        typed = exc.details.get("typed")
        message = f"{exc.code.value}: {exc.message}"
        status = STATUS.get(exc.code, 422)  # the grammar's or the box check's "no": 422
        return _render(
            request,
            who,
            sample_pk,
            message=message,
            typed=typed if isinstance(typed, dict) else None,
            status=status,
        )
    return RedirectResponse(f"/console/label?done={sample_pk}", status_code=303)


@router.post("/label/dispute/{label_id}", response_class=HTMLResponse)
async def post_dispute(request: Request, label_id: LabelId) -> Response:
    """Dispute a current label with a reason; the sample goes back to the queue."""
    who, form, refusal = await _check_post(request)
    if refusal is not None:
        return refusal
    refusal = _labeler(request, who)
    if refusal is not None:
        return refusal
    assert who is not None
    reason = str(form.get("reason", "")).strip()[:500]
    svc = _svc(request)
    if len(reason) < 3:
        return _error(request, ErrorCode.LABEL_INVALID, "a dispute needs a reason", who)

    def act() -> int:
        with svc.sessions.begin() as s:
            return labels.dispute(s, label_id, who[0].actor, reason).sample_pk

    try:
        sample_pk = await run_in_threadpool(act)
    except DockgateError as exc:
        return _error(request, exc.code, exc.message, who)
    return RedirectResponse(f"/console/label/{quote(str(sample_pk))}", status_code=303)
