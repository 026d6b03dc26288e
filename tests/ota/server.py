"""The real OTA router (cloud/rollouts) served by uvicorn on a free port, with a request log."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from cloud.problems import dockgate_error_handler
from cloud.rollouts.router import router
from edge.contracts.errors import DockgateError


class RequestLog(BaseHTTPMiddleware):
    def __init__(self, app: object, log: list[tuple[str, str | None]]) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.log = log

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        self.log.append((request.url.path, request.headers.get("range")))
        return await call_next(request)


def make_app(repo_dir: Path, log: list[tuple[str, str | None]]) -> FastAPI:
    app = FastAPI()
    app.state.ota_dir = repo_dir
    app.add_exception_handler(DockgateError, dockgate_error_handler)  # as cloud/app.py
    app.add_middleware(RequestLog, log=log)
    app.include_router(router)
    return app


@contextmanager
def serve(repo_dir: Path, port: int) -> Iterator[list[tuple[str, str | None]]]:
    log: list[tuple[str, str | None]] = []
    config = uvicorn.Config(
        make_app(repo_dir, log), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ota-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("OTA test server did not start")
        time.sleep(0.02)
    try:
        yield log
    finally:
        server.should_exit = True
        thread.join(10)
