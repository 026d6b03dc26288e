"""Wire contract of training-sample upload (edge sync agent -> cloud ``/v1/samples``).

A sample is one image (the code region or carton frame the reader was unsure about) plus its
metadata (the read: status, confidence, fields, model version, when). It is addressed by the
SHA-256 of its bytes: the cloud stores identical bytes once, however many devices or samples
refer to them, and the edge first asks which hashes the cloud already holds (``HAVE``) so that
it sends those bytes no more. Both requests are signed by the device like ingest (the signature
covers the body, which carries the image, so metadata and bytes cannot be swapped in transit).

This is the first brick of the cloud's sample inbox: a stored sample has ``status = "new"`` and
its metadata as the device sent it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

SAMPLES_PATH = "/v1/samples"
SAMPLES_HAVE_PATH = "/v1/samples/have"
SAMPLE_ID_PATTERN = r"^[0-9][0-9-]{0,63}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
MAX_METADATA_BYTES = 16 * 1024  # a read's metadata is ~1 KiB; bounded so nobody ships a file here
MAX_HAVE = 200
ContentType = Literal["image/png", "image/jpeg"]


class SampleUpload(BaseModel):
    """One sample. ``data`` (base64) may be left out when the cloud said it has ``sha256``."""

    device_id: str = Field(..., min_length=1, max_length=63)
    sample_id: str = Field(..., pattern=SAMPLE_ID_PATTERN, description="the device's sample id")
    sha256: str = Field(..., pattern=SHA256_PATTERN, description="SHA-256 of the image bytes")
    size: int = Field(..., ge=1, description="length of the image bytes")
    content_type: ContentType = "image/png"
    data: str | None = Field(None, description="the image bytes, base64 (standard alphabet)")
    status: str | None = Field(None, max_length=16, description="REVIEW | UNREADABLE | ...")
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    model_version: str | None = Field(None, max_length=64)
    captured_at: float | None = Field(None, ge=0, description="Unix time the device kept it")
    metadata: dict[str, Any] = Field(default_factory=dict, description="the read, as kept")


class SampleReceipt(BaseModel):
    sample_id: str
    sha256: str
    id: int = Field(..., description="the cloud's id of the sample (the inbox's row)")
    duplicate: bool = Field(..., description="this device had already uploaded this sample id")
    blob_new: bool = Field(..., description="these bytes were not stored before")


class HaveRequest(BaseModel):
    device_id: str = Field(..., min_length=1, max_length=63)
    sha256: list[Annotated[str, Field(pattern=SHA256_PATTERN)]] = Field(..., max_length=MAX_HAVE)


class HaveResponse(BaseModel):
    have: list[str]
