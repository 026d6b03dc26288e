"""The device signer: the real implementation of ``edge.contracts.signing.Signer``."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from edge.contracts.clock import wall_time
from edge.contracts.envelope import (
    TYP_CHECKPOINT,
    TYP_REQUEST,
    alg_for_key,
    cert_fingerprint,
    device_id_of,
    sign_envelope,
    sign_jws,
)
from edge.trust.keys import Identity


class DeviceSigner:
    """Signs events, chain checkpoints and HTTP requests with the device key."""

    def __init__(self, identity: Identity) -> None:
        self._key = identity.key
        self._device_id = device_id_of(identity.cert)
        self.fingerprint = cert_fingerprint(identity.cert)
        self.alg = alg_for_key(identity.key)
        self.clock_offset = 0.0  # server time minus local time, learnt from CLOCK_SKEW answers

    @property
    def device_id(self) -> str:
        return self._device_id

    def sign_event(self, event: dict[str, Any], *, model_version: str | None = None) -> str:
        if event.get("device_id") != self._device_id:
            raise ValueError(
                f"event of {event.get('device_id')!r} cannot be signed by {self._device_id!r}"
            )
        return sign_envelope(event, self._key, self.fingerprint, model_version)

    def sign_checkpoint(self, seq: int, head: str, ts: str) -> str:
        claims = {"v": 1, "dev": self._device_id, "seq": seq, "head": head, "ts": ts}
        return sign_jws(TYP_CHECKPOINT, claims, self._key, self._device_id, self.fingerprint)

    def sign_request(self, method: str, path: str, body: bytes) -> str:
        """A one-use signature over method, path and body hash (sent as ``Authorization``)."""
        claims = {
            "v": 1,
            "dev": self._device_id,
            "m": method.upper(),
            "p": path,
            "body": hashlib.sha256(body).hexdigest(),
            "ts": int(wall_time() + self.clock_offset),
            "nonce": secrets.token_urlsafe(16),
        }
        return sign_jws(TYP_REQUEST, claims, self._key, self._device_id, self.fingerprint)
