"""Edge updater: TUF-verified metadata (python-tuf ``ngclient``) and resumable, verified downloads.

Layout under the node's OTA directory (``<data_dir>/ota``)::

    metadata/root.json ...      trusted metadata; root.json installed once from the release server
                                 (``dockgate ota trust``) and then only advanced by ngclient
    staging/<name>-<sha>.part   a download in progress (resumed with HTTP Range)
    staging/<name>-<sha>.onnx   a download verified against its signed length and sha256

``Updater.refresh()`` does every TUF check (signatures by the trusted keys, versions that never
go down, expiry, snapshot/targets consistency); its errors become stable codes here. The target
file itself is fetched by :meth:`OtaClient.fetch` rather than ``Updater.download_target`` because
ngclient cannot resume: the ``.part`` grows across interruptions, is capped at the signed length
(endless-data defence) and is renamed to ``.onnx`` only after ``TargetFile`` verified it.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, TargetFile
from tuf.ngclient import FetcherInterface, Updater

from edge.contracts.errors import DockgateError, ErrorCode
from ota.fsutil import atomic_write, fsync_dir

#: Receives short progress events ("download 65536/1048576", "verified"), e.g. for logs.
Events = Callable[[str], None]
ACTIVE_FILE = "active.json"


@dataclass(frozen=True)
class VerifiedModel:
    """A model file whose length and sha256 matched signed, unexpired metadata."""

    name: str
    version: str
    path: Path
    sha256: str
    size: int
    custom: dict[str, Any]


def install_root(ota_dir: Path, root_json: bytes) -> Path:
    """Install the release server's root metadata as this device's trust anchor (first time only).

    Later roots arrive through ngclient, each signed by the previous one; re-installing a root
    over an existing one is refused (that would be a way around TUF's key rotation rules).
    """
    try:
        md = Metadata[Root].from_bytes(root_json)
        md.signed.verify_delegate("root", md.signed_bytes, md.signatures)
    except Exception as exc:  # any parse or signature problem: refuse with one line
        raise DockgateError(ErrorCode.OTA_SIGNATURE_INVALID, f"not a signed root: {exc}") from None
    target = ota_dir / "metadata" / "root.json"
    if target.exists():
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"{target} exists; the device trusts a root")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(target, root_json)
    return target


class HttpxFetcher(FetcherInterface):
    """ngclient's network seam on httpx, so metadata and model downloads share one client
    (one TLS context: the fleet's private CA from ``sync.tls_ca_file``, one timeout policy)."""

    def __init__(self, client: httpx.Client, chunk_bytes: int) -> None:
        self.client = client
        self.chunk_bytes = chunk_bytes

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            resp = self.client.send(self.client.build_request("GET", url), stream=True)
        except httpx.TimeoutException as exc:
            raise tuf_errors.SlowRetrievalError(f"{url}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise tuf_errors.DownloadError(f"{url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            resp.close()
            raise tuf_errors.DownloadHTTPError(f"{url}: HTTP {resp.status_code}", resp.status_code)
        return self._chunks(resp)

    def _chunks(self, resp: httpx.Response) -> Iterator[bytes]:
        try:
            yield from resp.iter_bytes(self.chunk_bytes)
        except httpx.TimeoutException as exc:
            raise tuf_errors.SlowRetrievalError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise tuf_errors.DownloadError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            resp.close()


class OtaClient:
    """One device's view of the release repository at ``base_url`` (e.g. ``https://cloud/ota``).

    ``verify`` is what httpx takes: ``True`` (system CAs) or an ``ssl.SSLContext`` holding the
    fleet's CA. Use as a context manager (or call :meth:`close`) to release connections.
    """

    def __init__(
        self,
        base_url: str,
        ota_dir: Path,
        *,
        timeout_s: float = 30.0,
        chunk_bytes: int = 256 * 1024,
        events: Events | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        """``on_request`` sees the URL of every request (metadata and targets), e.g. for a
        fleet test that checks which device downloaded which release."""
        self.base_url = base_url.rstrip("/")
        self.metadata_dir = ota_dir / "metadata"
        self.staging_dir = ota_dir / "staging"
        self.timeout_s = timeout_s
        self.chunk_bytes = chunk_bytes
        self._events = events or (lambda _e: None)
        # Idle connections expire before a server's usual 5 s keep-alive (uvicorn's default):
        # reusing one the server is closing at that moment fails with a connection reset.
        limits = httpx.Limits(max_connections=4, keepalive_expiry=2.0)
        hooks: dict[str, list[Callable[[httpx.Request], None]]] = {}
        if on_request is not None:
            hooks["request"] = [lambda request: on_request(str(request.url))]
        self._http = httpx.Client(
            timeout=timeout_s,
            transport=transport,
            verify=verify,
            limits=limits,
            event_hooks=hooks,
        )
        self._updater: Updater | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OtaClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- metadata -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Fetch and verify timestamp -> snapshot -> targets (and any newer root).

        Raises ``OTA_METADATA_EXPIRED``, ``OTA_ROLLBACK_REFUSED``, ``OTA_SIGNATURE_INVALID``,
        ``OTA_HASH_MISMATCH`` or ``OTA_DOWNLOAD_FAILED``; in every case nothing changes on
        the device and the running model keeps running.
        """
        if not (self.metadata_dir / "root.json").is_file():
            raise DockgateError(
                ErrorCode.OTA_NOT_INSTALLED,
                f"no trusted root in {self.metadata_dir}: run 'dockgate ota trust'",
            )
        updater = Updater(
            metadata_dir=str(self.metadata_dir),
            metadata_base_url=f"{self.base_url}/metadata/",
            target_base_url=f"{self.base_url}/targets/",
            target_dir=str(self.staging_dir),
            fetcher=HttpxFetcher(self._http, self.chunk_bytes),
            bootstrap=None,  # trust anchor: metadata/root.json, installed by install_root
        )
        with _Mapped("metadata"):
            updater.refresh()
        self._updater = updater
        self._events("metadata verified")

    def _target(self, path: str) -> TargetFile:
        if self._updater is None:
            self.refresh()
        assert self._updater is not None
        with _Mapped(path):
            info = self._updater.get_targetinfo(path)
        if info is None:
            raise DockgateError(ErrorCode.OTA_NOT_INSTALLED, f"no signed target {path}")
        return info

    def assignment(self, name: str) -> dict[str, str]:
        """The signed pointer ``{"name", "version", "target"}`` to the version to run."""
        info = self._target(f"{name}/{ACTIVE_FILE}")
        pointer = info.custom.get("active")
        if not isinstance(pointer, dict) or pointer.get("name") != name:
            raise DockgateError(ErrorCode.OTA_SIGNATURE_INVALID, f"{name}: malformed pointer")
        return {k: str(pointer[k]) for k in ("name", "version", "target")}

    def target_sha256(self, path: str) -> str:
        """The signed sha256 of target ``path`` (to recognise a release without downloading)."""
        return str(self._target(path).hashes["sha256"])

    def target_custom(self, path: str) -> dict[str, Any]:
        """The signed custom metadata of target ``path`` (name, version, min_dockgate, ...)."""
        return dict(self._target(path).custom)

    # -- targets --------------------------------------------------------------------------
    def fetch(self, name: str) -> VerifiedModel:
        """Download (resuming any ``.part``) and verify the model ``name`` should run, as the
        repository's signed ``active.json`` pointer names it."""
        pointer = self.assignment(name)
        return self.fetch_target(name, pointer["version"], pointer["target"])

    def fetch_target(self, name: str, version: str, target: str) -> VerifiedModel:
        """Download and verify ``target`` (a cloud assignment names it): it must be a target of
        the signed, unexpired targets metadata whose signed custom ``name``/``version`` are the
        ones asked for, and the file must match its signed length and sha256."""
        info = self._target(target)
        custom = dict(info.custom)
        if custom.get("name") != name or custom.get("version") != version:
            raise DockgateError(
                ErrorCode.OTA_SIGNATURE_INVALID,
                f"{target}: signed metadata says {custom.get('name')} {custom.get('version')}, "
                f"not {name} {version}",
            )
        sha = info.hashes["sha256"]
        final = self.staging_dir / f"{name}-{sha}.onnx"
        if not final.exists():
            part = self.staging_dir / f"{name}-{sha}.part"
            self._download(info, part)
            self._verify(info, part)
            os.replace(part, final)
            fsync_dir(self.staging_dir)
            self._events("staged")
        else:
            self._verify(info, final)  # a staged file is re-checked, never trusted by name
        return VerifiedModel(name, version, final, sha, info.length, custom)

    def _url(self, info: TargetFile) -> str:
        directory, _, base = info.path.rpartition("/")
        prefix = f"{directory}/" if directory else ""
        return f"{self.base_url}/targets/{prefix}{info.hashes['sha256']}.{base}"

    def _download(self, info: TargetFile, part: Path) -> None:
        self.staging_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        have = part.stat().st_size if part.exists() else 0
        if have > info.length:  # can only be garbage: start over
            part.unlink()
            have = 0
        if have == info.length:
            return
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with self._http.stream("GET", self._url(info), headers=headers) as resp:
                if resp.status_code == 200:
                    have = 0  # server ignored Range: rewrite from the start
                elif resp.status_code != 206 or not _starts_at(resp, have):
                    raise DockgateError(
                        ErrorCode.OTA_DOWNLOAD_FAILED, f"{info.path}: HTTP {resp.status_code}"
                    )
                self._events(f"download {have}/{info.length}")
                with part.open("r+b" if have else "wb") as fh:
                    fh.seek(have)
                    fh.truncate()
                    for chunk in resp.iter_bytes(self.chunk_bytes):
                        have += len(chunk)
                        if have > info.length:
                            raise DockgateError(
                                ErrorCode.OTA_HASH_MISMATCH,
                                f"{info.path}: server sent more than the signed {info.length} B",
                            )
                        fh.write(chunk)
                        fh.flush()
                        os.fsync(fh.fileno())
                        self._events(f"download {have}/{info.length}")
        except httpx.HTTPError as exc:
            raise DockgateError(
                ErrorCode.OTA_DOWNLOAD_FAILED, f"{info.path}: {type(exc).__name__}: {exc}"
            ) from None

    def _verify(self, info: TargetFile, path: Path) -> None:
        try:
            with path.open("rb") as fh:
                info.verify_length_and_hashes(fh)
        except tuf_errors.LengthOrHashMismatchError as exc:
            path.unlink(missing_ok=True)  # never resume on top of bytes that failed
            raise DockgateError(ErrorCode.OTA_HASH_MISMATCH, f"{info.path}: {exc}") from None
        self._events("verified")


def _starts_at(resp: httpx.Response, offset: int) -> bool:
    content_range = str(resp.headers.get("content-range", ""))
    return content_range.startswith(f"bytes {offset}-")


class _Mapped:
    """Turn python-tuf's exceptions into Dockgate's stable error codes (one place)."""

    _CODES: tuple[tuple[type[Exception], ErrorCode], ...] = (
        (tuf_errors.ExpiredMetadataError, ErrorCode.OTA_METADATA_EXPIRED),
        (tuf_errors.BadVersionNumberError, ErrorCode.OTA_ROLLBACK_REFUSED),
        (tuf_errors.UnsignedMetadataError, ErrorCode.OTA_SIGNATURE_INVALID),
        (tuf_errors.LengthOrHashMismatchError, ErrorCode.OTA_HASH_MISMATCH),
        (tuf_errors.DownloadLengthMismatchError, ErrorCode.OTA_HASH_MISMATCH),
        (tuf_errors.DownloadError, ErrorCode.OTA_DOWNLOAD_FAILED),
        (tuf_errors.RepositoryError, ErrorCode.OTA_SIGNATURE_INVALID),
    )

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        if exc is None or not isinstance(exc, Exception):
            return
        for kind, code in self._CODES:
            if isinstance(exc, kind):
                raise DockgateError(code, f"{self.what}: {type(exc).__name__}: {exc}") from None
        if isinstance(exc, (OSError, json.JSONDecodeError)):
            raise DockgateError(ErrorCode.OTA_DOWNLOAD_FAILED, f"{self.what}: {exc}") from None
