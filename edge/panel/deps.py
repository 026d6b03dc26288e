"""Shared helpers for the routers: services from ``app.state``, templates, translation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from edge.contracts.errors import DockgateError, ErrorCode
from edge.panel.audit import AuditLog
from edge.panel.config import PanelConfig
from edge.panel.i18n import Translator
from edge.panel.imagesize import image_size
from edge.panel.live import LiveFeed
from edge.panel.services import PanelLedger, PanelServices
from edge.panel.sessions import Session
from edge.panel.users import User

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Autoescape on for every template: a lot number or typed code can never become markup.
ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals["image_size"] = image_size

NAV = (
    ("live", "/live"),
    ("review", "/review"),
    ("qa", "/qa"),
    ("stock", "/stock"),
    ("charts", "/charts"),
    ("equipment", "/equipment"),
    ("device", "/device"),
)


def services(request: Request) -> PanelServices:
    svc: PanelServices = request.app.state.services
    return svc


def ledger(request: Request) -> PanelLedger:
    led = services(request).ledger
    if led is None:
        raise DockgateError(ErrorCode.NOT_FOUND, "the ledger is not configured on this node")
    return led


def audit(request: Request) -> AuditLog:
    log: AuditLog = request.app.state.audit
    return log


def feed(request: Request) -> LiveFeed:
    live: LiveFeed = request.app.state.feed
    return live


def config(request: Request) -> PanelConfig:
    cfg: PanelConfig = request.app.state.config
    return cfg


def session(request: Request) -> Session:
    s = request.scope["state"]["session"]
    assert isinstance(s, Session)
    return s


def translator(request: Request) -> Translator:
    state = request.scope.get("state", {})
    s = state.get("session")
    return Translator(s.lang if isinstance(s, Session) else config(request).language)


def user(request: Request) -> User | None:
    u = getattr(request.state, "user", None)
    return u if isinstance(u, User) else None


async def form(request: Request) -> dict[str, str]:
    """The submitted form as plain strings (file parts are ignored)."""
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    t = translator(request)
    s = request.scope.get("state", {}).get("session")
    page = ENV.get_template(template).render(
        t=t,
        lang=t.lang,
        user=user(request),
        csrf=s.csrf if isinstance(s, Session) else "",
        nav=NAV,
        path=request.url.path,
        **context,
    )
    return HTMLResponse(page, status_code=status, headers=dict(headers or {}))
