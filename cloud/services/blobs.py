"""Content-addressed blob storage for uploaded samples (and, later, the sample inbox's exports).

A blob is named by the SHA-256 of its bytes, so identical bytes are stored once and a blob never
changes. :class:`BlobStore` is the interface the routers use; :class:`LocalBlobStore` keeps blobs
in a local directory (the default, and what tests and the demo use). An object store (S3, GCS)
fits the same four methods; the database keeps only the hashes.

Local layout: ``<root>/ab/cd/abcd...`` (two levels of fan-out keep directories small). A blob is
written to a private temporary file, fsynced and renamed into place, so a crash never leaves a
partial blob under its name, and two workers storing the same bytes at once both succeed.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from edge.contracts.errors import DockgateError, ErrorCode

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BlobStore(Protocol):
    def put(self, sha256: str, data: bytes) -> bool:
        """Store ``data`` under its hash (checked); True if it was not stored before."""

    def get(self, sha256: str) -> bytes:
        """The bytes; ``DockgateError(NOT_FOUND)`` if unknown."""

    def has(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int | None:
        """Length in bytes, ``None`` if unknown."""


class LocalBlobStore:
    """Blobs as files under ``root`` (created 0700; blobs 0600)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise DockgateError(ErrorCode.SAMPLE_INVALID, "not a lowercase hex SHA-256")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, sha256: str, data: bytes) -> bool:
        path = self._path(sha256)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise DockgateError(ErrorCode.SAMPLE_INVALID, "the bytes do not match their sha256")
        if path.exists():
            return False
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")  # 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)  # atomic; a concurrent writer of the same bytes is harmless
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return True

    def get(self, sha256: str) -> bytes:
        try:
            return self._path(sha256).read_bytes()
        except FileNotFoundError:
            raise DockgateError(ErrorCode.NOT_FOUND, f"no blob {sha256}") from None

    def has(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        try:
            return self._path(sha256).stat().st_size
        except FileNotFoundError:
            return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
