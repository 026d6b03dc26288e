"""Live line view (server-sent events) and the charts screen."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from edge.contracts.errors import DockgateError, ErrorCode
from edge.panel import charts, deps
from edge.panel.live import LiveCarton
from edge.panel.security import ALL_ROLES, allow
from edge.panel.services import STATUSES

router = APIRouter()
#: A stream ends after this long and the browser's EventSource reconnects on its own; this
#: bounds how long a forgotten tab holds a connection (and lets the server shut down).
STREAM_MAX_S = 300.0
WAKE_S = 1.0  # also look for a closed connection this often
KEEPALIVE_S = 15.0


@router.get("/live", response_class=HTMLResponse)
@allow(*ALL_ROLES)
def live_page(request: Request) -> Response:
    feed = deps.feed(request)
    cartons = feed.recent()
    return deps.render(
        request, "live.html", cartons=cartons, last_seq=cartons[0].seq if cartons else feed.seq
    )


def _card(request: Request, carton: LiveCarton) -> str:
    t = deps.translator(request)
    return deps.ENV.get_template("_carton.html").render(t=t, c=carton.event)


@router.get("/live/stream")
@allow(*ALL_ROLES)
def live_stream(request: Request, after: int = 0) -> Response:
    feed = deps.feed(request)
    header = request.headers.get("last-event-id", "")
    last = int(header) if header.isdigit() else max(after, 0)

    async def events() -> AsyncIterator[str]:
        nonlocal last
        yield "retry: 2000\n\n"
        started = quiet = time.monotonic()
        arrived = feed.waiter()
        try:
            while time.monotonic() - started < STREAM_MAX_S:
                if await request.is_disconnected():
                    return
                arrived.clear()  # before reading: a carton added after this sets it again
                for carton in reversed(feed.recent(after_seq=last)):
                    data = json.dumps(
                        {"id": carton.event.carton_id, "html": _card(request, carton)}
                    )
                    yield f"id: {carton.seq}\nevent: carton\ndata: {data}\n\n"
                    last, quiet = carton.seq, time.monotonic()
                if time.monotonic() - quiet > KEEPALIVE_S:
                    yield ": keep-alive\n\n"
                    quiet = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), WAKE_S)
        finally:
            feed.forget(arrived)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"},
    )


@router.get("/live/crop/{carton_id}")
@allow(*ALL_ROLES)
def crop(request: Request, carton_id: str) -> Response:
    event = deps.feed(request).carton(carton_id)
    if event is None or event.crop is None:
        raise DockgateError(ErrorCode.NOT_FOUND, "no image for that carton")
    mime = event.crop_type if event.crop_type in ("image/png", "image/jpeg") else "image/png"
    return Response(event.crop, media_type=mime)


@router.get("/charts", response_class=HTMLResponse)
@allow(*ALL_ROLES)
def charts_page(request: Request) -> Response:
    t = deps.translator(request)
    feed = deps.feed(request)
    labels: dict[str, str] = {s: t(f"status.{s}") for s in STATUSES}
    return deps.render(
        request,
        "charts.html",
        per_hour=charts.bar_chart(feed.per_hour(), t("charts.per_hour")),
        share=charts.share_bar(feed.status_share(), labels, t("charts.share")),
        latency=charts.line_chart(feed.latency_series(), t("charts.latency"), "ms"),
        has_latency=feed.latency() is not None,
    )
