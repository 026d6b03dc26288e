"""Serve the TUF release repository to devices: ``/ota/metadata/*`` and ``/ota/targets/*``.

Read-only, unauthenticated on purpose: everything served is signed (TUF metadata) or pinned by
hash in signed metadata (targets), so the transport need not be trusted; the keys directory of
the same repository is never reachable. Target downloads honour HTTP ``Range`` (Starlette's
``FileResponse``), which the edge uses to resume an interrupted download on a flaky link.

The repository directory comes from ``app.state.ota_dir`` when set, else from the cloud's
``ota_dir`` setting (``DOCKGATE_CLOUD_OTA_DIR``; default ``data/cloud/ota``, as ``dockgate ota``).
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from cloud.problems import check_file_name

router = APIRouter(prefix="/ota", tags=["ota"])

_METADATA = re.compile(r"^(?:[0-9]{1,9}\.)?(?:root|targets|snapshot|timestamp)\.json$")
_SEGMENT = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,127}$")


def repository_dir(request: Request) -> Path:
    """``app.state.ota_dir`` when set (tests, tools), else the service's ``ota_dir`` setting."""
    configured = getattr(request.app.state, "ota_dir", None)
    if configured is not None:
        return Path(configured)
    return Path(request.app.state.services.config.ota_dir)


def _file(path: Path, media_type: str, cache: str) -> FileResponse:
    if not path.is_file():
        raise HTTPException(status_code=404, detail="not found")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": cache})


@router.get("/metadata/{name}")
def metadata(name: str, request: Request) -> FileResponse:
    """One metadata file. Versioned files never change; ``timestamp.json`` changes in place."""
    check_file_name(name, "metadata name")  # an attempt to leave the directory: audited
    if not _METADATA.match(name):
        raise HTTPException(status_code=404, detail="not found")
    # Versioned names are immutable (consistent snapshots); the rest must not be cached.
    cache = "public, max-age=31536000, immutable" if name[0].isdigit() else "no-cache"
    return _file(repository_dir(request) / "metadata" / name, "application/json", cache)


@router.get("/targets/{path:path}")
def target(path: str, request: Request) -> FileResponse:
    """A hash-prefixed target file (``<name>/<version>/<sha256>.<file>``), with Range support."""
    check_file_name(path, "target path")  # an attempt to leave the directory: audited
    parts = path.split("/")
    if not 1 <= len(parts) <= 4 or not all(_SEGMENT.match(p) for p in parts):
        raise HTTPException(status_code=404, detail="not found")
    return _file(
        repository_dir(request).joinpath("targets", *parts),
        "application/octet-stream",
        "public, max-age=31536000, immutable",
    )
