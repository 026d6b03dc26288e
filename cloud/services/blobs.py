"""Content-addressed blob storage for uploaded samples (and, later, the sample inbox's exports).

A blob is named by the SHA-256 of its bytes, so identical bytes are stored once and a blob never
changes. :class:`BlobStore` is the interface the routers use; :class:`LocalBlobStore` keeps blobs
in a local directory (the default, and what the demo uses); :class:`S3BlobStore` keeps them in
any S3-compatible object store (AWS S3, MinIO, Ceph RGW) through boto3. The database keeps only
the hashes. :func:`blob_store_for` picks one from the cloud config (``blob_store = "local" |
"s3"``).

Local layout: ``<root>/ab/cd/abcd...`` (two levels of fan-out keep directories small). A blob is
written to a private temporary file, fsynced and renamed into place, so a crash never leaves a
partial blob under its name, and two workers storing the same bytes at once both succeed.

S3 layout: ``<s3_prefix>ab/cd/abcd...`` in ``s3_bucket``, the same fan-out (it keeps listings
of a prefix browsable). An object PUT is atomic on S3, so a crash never leaves a partial object
either; the bytes' ``Content-MD5`` goes with them, so the store itself refuses bytes damaged on
the way (MD5 rather than the newer ``x-amz-checksum-*`` headers: every S3-compatible store
checks it, older MinIO and Ceph releases refuse the new ones). Credentials come from the
standard boto3 chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``,
``~/.aws``, an instance or pod role), never from the Dockgate config, so no secret sits in a
config file or in a log line.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edge.contracts.errors import DockgateError, ErrorCode

if TYPE_CHECKING:
    from cloud.config import CloudConfig

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BlobStore(Protocol):
    def put(self, sha256: str, data: bytes) -> bool:
        """Store ``data`` under its hash (checked); True if it was not stored before."""

    def get(self, sha256: str) -> bytes:
        """The bytes; ``DockgateError(NOT_FOUND)`` if unknown."""

    def has(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int | None:
        """Length in bytes, ``None`` if unknown."""


def _check_name(sha256: str) -> str:
    """The fan-out path of a blob (``ab/cd/abcd...``); ``SAMPLE_INVALID`` if not a SHA-256."""
    if not _SHA256.fullmatch(sha256):
        raise DockgateError(ErrorCode.SAMPLE_INVALID, "not a lowercase hex SHA-256")
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def _check_bytes(sha256: str, data: bytes) -> None:
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DockgateError(ErrorCode.SAMPLE_INVALID, "the bytes do not match their sha256")


class LocalBlobStore:
    """Blobs as files under ``root`` (created 0700; blobs 0600)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        return self.root / _check_name(sha256)

    def put(self, sha256: str, data: bytes) -> bool:
        path = self._path(sha256)
        _check_bytes(sha256, data)
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


class S3BlobStore:
    """Blobs as objects ``<prefix>ab/cd/<sha256>`` in one bucket of an S3-compatible store.

    Same semantics as :class:`LocalBlobStore`: ``put`` checks the hash and answers False when
    the object exists already (two workers storing the same bytes at once may both answer True;
    both wrote the same bytes, so nothing is lost). A missing object is ``NOT_FOUND``; any other
    store failure (unreachable endpoint, access denied, missing bucket) propagates as the boto3
    exception, which the API answers with a 5xx, so the device backs off and sends again.

    ``client`` is a boto3 S3 client; by default one is built from ``endpoint_url`` and
    ``region`` with path-style addressing (what MinIO and Ceph expect) and standard retries.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.bucket, self.prefix, self.endpoint_url = bucket, prefix, endpoint_url
        self.client = client if client is not None else _s3_client(endpoint_url, region)

    def __repr__(self) -> str:  # what logs may show: where, never who (no credentials here)
        where = self.endpoint_url or "aws"
        return f"S3BlobStore({where}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    def key(self, sha256: str) -> str:
        """The object key of a blob."""
        return self.prefix + _check_name(sha256)

    def _head(self, sha256: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise
        return head

    def put(self, sha256: str, data: bytes) -> bool:
        key = self.key(sha256)
        _check_bytes(sha256, data)
        if self._head(sha256) is not None:
            return False
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentLength=len(data),
            # the store checks the bytes it received against this before it keeps them
            ContentMD5=base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode(),
        )
        return True

    def get(self, sha256: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))
        except Exception as exc:
            if _is_missing(exc):
                raise DockgateError(ErrorCode.NOT_FOUND, f"no blob {sha256}") from None
            raise
        data: bytes = answer["Body"].read()
        return data

    def has(self, sha256: str) -> bool:
        return self._head(sha256) is not None

    def size(self, sha256: str) -> int | None:
        head = self._head(sha256)
        return None if head is None else int(head["ContentLength"])


def _s3_client(endpoint_url: str | None, region: str | None) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:  # the [s3] extra
        raise DockgateError(
            ErrorCode.CONFIG_INVALID,
            f"blob_store = 's3' needs boto3 (pip install 'dockgate[s3]'): {exc}",
        ) from None
    config = Config(
        retries={"max_attempts": 4, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        # path style (endpoint/bucket/key) works everywhere; virtual hosts need DNS per bucket
        s3={"addressing_style": "path"} if endpoint_url else {},
        # no default CRC checksum headers (botocore >= 1.36): many S3-compatible stores refuse
        # them; Content-MD5 (put) guards the bytes instead
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    # a Session of its own: no state shared with other code through boto3's default session
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=region, config=config
    )


def _is_missing(exc: Exception) -> bool:
    """A botocore ClientError saying "no such key" (HEAD answers a bare 404)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("404", "NoSuchKey", "NotFound") or (status == 404 and code != "NoSuchBucket")


def blob_store_for(config: CloudConfig) -> BlobStore:
    """The blob store the config names. S3 stores are cached per setting (one boto3 client and
    its connection pool per process, thread-safe), local ones are cheap to make."""
    if config.blob_store == "s3":
        return _cached_s3(
            config.s3_bucket, config.s3_prefix, config.s3_endpoint_url, config.s3_region
        )
    return LocalBlobStore(config.blob_dir)


@functools.lru_cache(maxsize=8)
def _cached_s3(
    bucket: str, prefix: str, endpoint_url: str | None, region: str | None
) -> S3BlobStore:
    return S3BlobStore(bucket, prefix, endpoint_url=endpoint_url, region=region)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
