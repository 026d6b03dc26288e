"""The rollout console: fleet, releases, rollouts with gates and charts, and the admin buttons.

Server-rendered (Jinja2, autoescaped), no script, no CDN; charts are inline SVG. People log in
with the cloud's own accounts (password, plus TOTP for admins, ``cloud.auth.login``); the
session token travels in an HttpOnly, SameSite=Strict cookie (``__Host-`` prefixed and Secure
over HTTPS). Every POST needs the session's CSRF token (an HMAC of the session token, so it is
bound to the session and never stored) and, when the browser sends one, an Origin of this host.
Viewing needs the viewer role; pause, resume, promote and abort need admin and are audited by
:func:`cloud.rollouts.service.operator_action` with the figures of the moment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from cloud import auth
from cloud.console.charts import METRICS, line_chart
from cloud.db.models import OtaRelease, RolloutRow, utcnow
from cloud.deps import Services
from cloud.problems import STATUS
from cloud.rollouts import service
from cloud.rollouts.api import rollout_detail, rollout_summary
from cloud.rollouts.gates import GateThresholds
from cloud.rollouts.plan import RolloutSpec
from cloud.rollouts.router import repository_dir
from edge.contracts.errors import DESCRIPTIONS, DockgateError, ErrorCode

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix="/console", include_in_schema=False)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NAV = (
    ("fleet", "/console/fleet"),
    ("releases", "/console/releases"),
    ("rollouts", "/console/rollouts"),
)
_CSRF_LABEL = b"dockgate-console-csrf-v1"
Who = tuple[auth.Caller, str]  # the person and their session token


def cookie_name(request: Request) -> str:
    # __Host- makes the browser refuse the cookie unless Secure, host-only and Path=/.
    return "__Host-dg_console" if request.url.scheme == "https" else "dg_console"


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def _svc(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def _caller(request: Request) -> tuple[auth.Caller, str] | None:
    token = request.cookies.get(cookie_name(request))
    if not token:
        return None
    try:
        with _svc(request).reader() as s:
            return auth.person(s, f"Bearer {token}"), token
    except DockgateError:
        return None


def _page(
    request: Request,
    name: str,
    context: dict[str, Any],
    who: tuple[auth.Caller, str] | None,
    status: int = 200,
) -> HTMLResponse:
    caller, token = who if who else (None, "")
    ctx = {
        "user": caller,
        "is_admin": bool(caller and caller.role == "admin"),
        "csrf": csrf_token(token) if token else "",
        "nav": NAV,
        "path": request.url.path,
        **context,
    }
    response = templates.TemplateResponse(request, name, ctx, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def _error(
    request: Request, code: ErrorCode, detail: str, who: tuple[auth.Caller, str] | None
) -> HTMLResponse:
    status = STATUS.get(code, 400)
    context = {"code": code.value, "title": DESCRIPTIONS[code], "detail": detail}
    return _page(request, "error.html", context, who, status)


def _viewer(request: Request, role: str = "viewer") -> Who | Response:
    """The signed-in person holding at least ``role``, or the answer to send instead: the login
    page, or FORBIDDEN (a labeler's account sees only the labeling page: least privilege)."""
    who = _caller(request)
    if who is None:
        return _login_redirect(request)
    if auth.ROLES.index(who[0].role) < auth.ROLES.index(role):
        return _error(request, ErrorCode.FORBIDDEN, f"needs role {role}", who)
    return who


def _login_redirect(request: Request) -> RedirectResponse:
    target = quote(request.url.path, safe="/")
    return RedirectResponse(f"/console/login?next={target}", status_code=303)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # a sandboxed or privacy-stripped "null" origin is refused
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", request.url.netloc)


def _iso(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- static and login ------------------------------------------------------------------------
@router.get("/static/console.css")
def stylesheet() -> FileResponse:
    return FileResponse(HERE / "static" / "console.css", media_type="text/css")


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/console/fleet", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/console/fleet") -> HTMLResponse:
    return _page(request, "login.html", {"next": _safe_next(next), "message": None}, None)


def _safe_next(target: str) -> str:
    """Only paths inside the console (no open redirect to another site)."""
    ok = target.startswith("/console/") and not target.startswith("//") and "\\" not in target
    return target if ok else "/console/fleet"


def _login(svc: Services, username: str, password: str, totp: str | None) -> str:
    cfg = svc.config
    try:
        with svc.sessions.begin() as s:
            token, _user = auth.login(s, username, password, totp, cfg.session_minutes)
            return token
    except DockgateError as exc:
        if exc.code in (ErrorCode.UNAUTHENTICATED, ErrorCode.TOTP_REQUIRED):
            with svc.sessions.begin() as s:
                auth.record_failure(s, username, exc.code, cfg.login_max_failures, cfg.login_lock_s)
        raise


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Log in with the cloud account (admins add their one-time code). No CSRF token exists
    yet, so the Origin must be this host."""
    form = await request.form()
    username = str(form.get("username", ""))[:63]
    password = str(form.get("password", ""))[:256]
    totp = str(form.get("totp", ""))[:10] or None
    target = _safe_next(str(form.get("next", "/console/fleet")))
    if not _same_origin(request):
        return _error(request, ErrorCode.CSRF_INVALID, "login from another site", None)
    try:
        token = await run_in_threadpool(_login, _svc(request), username, password, totp)
    except DockgateError as exc:
        context = {"next": target, "message": f"{exc.code.value}: {exc.message}"}
        return _page(request, "login.html", context, None, status=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        cookie_name(request),
        token,
        max_age=_svc(request).config.session_minutes * 60,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


async def _check_post(
    request: Request,
) -> tuple[tuple[auth.Caller, str] | None, Any, Response | None]:
    """(who, form, refusal): a POST needs a session, a same-site Origin and the CSRF token."""
    who = _caller(request)
    form = await request.form()
    if who is None:
        return None, form, _error(request, ErrorCode.UNAUTHENTICATED, "log in first", None)
    sent = str(form.get("csrf_token", ""))
    if not _same_origin(request) or not hmac.compare_digest(sent, csrf_token(who[1])):
        refusal = _error(request, ErrorCode.CSRF_INVALID, "missing or wrong CSRF token", who)
        return who, form, refusal
    return who, form, None


@router.post("/logout", response_class=HTMLResponse)
async def logout(request: Request) -> Response:
    who, _form, refusal = await _check_post(request)
    if refusal is not None:
        return refusal
    assert who is not None
    svc = _svc(request)

    def drop() -> None:
        with svc.sessions.begin() as s:
            auth.logout(s, f"Bearer {who[1]}")

    await run_in_threadpool(drop)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(cookie_name(request), path="/")
    return response


# -- pages -----------------------------------------------------------------------------------
@router.get("/fleet", response_class=HTMLResponse)
def fleet_page(request: Request) -> Response:
    who = _viewer(request)
    if not isinstance(who, tuple):
        return who
    svc = _svc(request)
    now = utcnow()
    online_s = max(3 * svc.config.ota_poll_s, 60.0)
    with svc.reader() as s:
        rows = service.fleet(s)
    devices = []
    for dev, models, seen in rows:
        devices.append(
            {
                "id": dev.id,
                "site": dev.site,
                "status": dev.status,
                "online": seen is not None and (now - seen).total_seconds() <= online_s,
                "models": [
                    {
                        "name": m.model,
                        "running": m.running or "—",
                        "probation": m.on_probation,
                        "code": m.last_code,
                        "refused": sorted(m.refused),
                    }
                    for m in sorted(models.values(), key=lambda m: m.model)
                ],
                "last_seen": _iso(seen),
            }
        )
    context = {
        "devices": devices,
        "online": sum(1 for d in devices if d["online"]),
        "online_s": int(online_s),
    }
    return _page(request, "fleet.html", context, who)


@router.get("/releases", response_class=HTMLResponse)
def releases_page(request: Request) -> Response:
    who = _viewer(request)
    if not isinstance(who, tuple):
        return who
    svc = _svc(request)
    with svc.sessions.begin() as s:
        service.sync_releases(s, repository_dir(request))
    with svc.reader() as s:
        rows = s.execute(select(OtaRelease).order_by(OtaRelease.name, OtaRelease.version)).scalars()
        releases = [
            {
                "name": r.name,
                "version": r.version,
                "target": r.target,
                "sha256": r.sha256,
                "length": r.length,
                "min_dockgate": r.custom.get("min_dockgate", "—"),
                "metrics": r.custom.get("metrics", {}),
                "registered": _iso(r.registered_at),
            }
            for r in rows
        ]
    active = service.repo_view(repository_dir(request)).active
    return _page(request, "releases.html", {"releases": releases, "active": active}, who)


@router.get("/rollouts", response_class=HTMLResponse)
def rollouts_page(request: Request) -> Response:
    who = _viewer(request)
    if not isinstance(who, tuple):
        return who
    with _svc(request).reader() as s:
        rows = s.execute(select(RolloutRow).order_by(RolloutRow.created_at.desc())).scalars()
        items = [rollout_summary(r) for r in rows]
    return _page(request, "rollouts.html", {"rollouts": items}, who)


DEFAULT_STAGES = (
    ("canary", "5", "", "3600", "200"),
    ("25%", "25", "", "3600", "500"),
    ("all", "100", "", "3600", "500"),
    ("", "", "", "", ""),
)


def _new_form(
    request: Request, who: Who, values: dict[str, Any], message: str | None, status: int = 200
) -> HTMLResponse:
    svc = _svc(request)
    with svc.reader() as s:
        rows = s.execute(select(OtaRelease).order_by(OtaRelease.name, OtaRelease.version))
        releases = [(r.name, r.version) for r in rows.scalars()]
    context = {
        "releases": releases,
        "v": values,
        "message": message,
        "gates": GateThresholds().model_dump(),
    }
    return _page(request, "new_rollout.html", context, who, status)


@router.get("/rollouts/new", response_class=HTMLResponse)
def new_rollout_form(request: Request) -> Response:
    who = _viewer(request, "admin")
    if not isinstance(who, tuple):
        return who
    with _svc(request).sessions.begin() as s:
        service.sync_releases(s, repository_dir(request))
    values = {
        "stages": [dict(zip(STAGE_FIELDS, row, strict=True)) for row in DEFAULT_STAGES],
        "auto_promote": True,
        "shadow": False,
    }
    return _new_form(request, who, values, None)


STAGE_FIELDS = ("name", "percent", "devices", "min_soak_s", "min_observations")


def _spec_from_form(form: Any) -> tuple[dict[str, Any], RolloutSpec]:
    """The form's values (to show again) and the validated spec (ValidationError if bad)."""
    values = _raw_values(form)
    stages = [
        {
            "name": st["name"],
            "percent": st["percent"] or "0",
            "devices": [d.strip() for d in st["devices"].split(",") if d.strip()],
            "min_soak_s": st["min_soak_s"] or "0",
            "min_observations": st["min_observations"] or "0",
        }
        for st in values["stages"]
        if st["name"]
    ]
    spec = RolloutSpec.model_validate(
        {
            "id": values["id"],
            "model": values["model"],
            "from_version": values["from_version"],
            "to_version": values["to_version"],
            "stages": stages,
            "auto_promote": values["auto_promote"],
            "shadow": values["shadow"],
        }
    )
    return values, spec


@router.post("/rollouts/new", response_class=HTMLResponse)
async def new_rollout(request: Request) -> Response:
    """An admin creates a rollout (it starts with the evaluator's next pass)."""
    who, form, refusal = await _check_post(request)
    if refusal is not None:
        return refusal
    assert who is not None
    caller = who[0]
    if caller.role != "admin":
        return _error(request, ErrorCode.FORBIDDEN, "needs role admin", who)
    try:
        values, spec = _spec_from_form(form)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"EVENT_INVALID: {where}: {first.get('msg', 'invalid')}"
        return _new_form(request, who, _raw_values(form), message, status=422)
    svc = _svc(request)
    repo = repository_dir(request)

    def create() -> None:
        with svc.sessions.begin() as s:
            service.create_rollout(s, caller.actor, spec, None, repo)

    try:
        await run_in_threadpool(create)
    except DockgateError as exc:
        message = f"{exc.code.value}: {exc.message}"
        return _new_form(request, who, values, message, status=STATUS.get(exc.code, 400))
    return RedirectResponse(f"/console/rollouts/{quote(spec.id)}", status_code=303)


def _raw_values(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        k: str(form.get(k, "")).strip()[:80] for k in ("id", "model", "from_version", "to_version")
    }
    values["auto_promote"] = form.get("auto_promote") == "on"
    values["shadow"] = form.get("shadow") == "on"
    values["stages"] = [
        {f: str(form.get(f"stage{i}_{f}", "")).strip()[:2000] for f in STAGE_FIELDS}
        for i in range(len(DEFAULT_STAGES))
    ]
    return values


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
def rollout_page(request: Request, rollout_id: str) -> Response:
    who = _viewer(request)
    if not isinstance(who, tuple):
        return who
    with _svc(request).reader() as s:
        row = s.get(RolloutRow, rollout_id)
        if row is None:
            return _error(request, ErrorCode.NOT_FOUND, f"no rollout {rollout_id}", who)
        detail = rollout_detail(s, row)
        charts = _charts(s, row)
    actions = {
        "pending": ["abort"],
        "running": ["pause", "promote", "abort"],
        "waiting_for_operator": ["promote", "pause", "abort"],
        "paused": ["resume", "promote", "abort"],
    }.get(row.state, [])
    context = {"r": detail, "charts": charts, "actions": actions, "iso": _iso}
    return _page(request, "rollout.html", context, who)


def _charts(s: Any, row: RolloutRow) -> list[Any]:
    start = row.start_at if row.start_at.tzinfo else row.start_at.replace(tzinfo=dt.UTC)
    end = row.ended_at or utcnow()
    end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
    since = start - dt.timedelta(seconds=max((end - start).total_seconds() * 0.05, 5.0))
    until = end + dt.timedelta(seconds=1)
    points = service.series(s, row.model, [row.from_version, row.to_version], since, until, 24)
    by_version: dict[str, list[Any]] = {row.from_version: [], row.to_version: []}
    for p in points:
        by_version[p.version].append((p.at, p.figures))
    keys = ["agreement", "errors", "latency", "confidence", "review", "defects"]
    if row.spec.get("shadow"):
        keys.append("disagreement")
    return [(METRICS[k][0], line_chart(k, by_version, since, until)) for k in keys]


@router.post("/rollouts/{rollout_id}/{action}", response_class=HTMLResponse)
async def rollout_action(request: Request, rollout_id: str, action: str) -> Response:
    """An admin's button: pause, resume, promote or abort (CSRF-checked, audited)."""
    who, form, refusal = await _check_post(request)
    if refusal is not None:
        return refusal
    assert who is not None
    caller = who[0]
    reason = str(form.get("reason", ""))[:500]
    svc = _svc(request)

    def act() -> None:
        with svc.sessions.begin() as s:
            auth.require_role(caller, "admin")
            service.operator_action(s, rollout_id, action, caller.actor, reason)

    try:
        await run_in_threadpool(act)
    except DockgateError as exc:
        return _error(request, exc.code, exc.message, who)
    return RedirectResponse(f"/console/rollouts/{quote(rollout_id)}", status_code=303)
