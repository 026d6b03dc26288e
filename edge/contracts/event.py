"""The ledger event: the unit every edge node records, signs and syncs.

An event is immutable once written. ``hash`` is SHA-256 over the RFC 8785 canonical JSON of every
other field, and ``prev_hash`` is the hash of the device's previous event (``GENESIS_HASH`` for
the first), so a device's events form a hash chain. Both edge and cloud compute hashes with
:func:`event_hash`; nothing else may.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import rfc8785

GENESIS_HASH = "0" * 64


class EventKind(StrEnum):
    """Every kind of event in the log.

    Stock kinds move or block stock; observation kinds (carton reads, defect verdicts, alerts)
    only record what the node saw or decided, so one chain holds every signed result.
    """

    RECEIPT = "receipt"
    PUTAWAY = "putaway"
    TRANSFER = "transfer"
    PICK = "pick"
    SHIP = "ship"
    RETURN_TO_SUPPLIER = "return-to-supplier"
    ADJUSTMENT = "adjustment"
    CYCLE_COUNT = "cycle-count"
    QA_FREEZE = "qa-freeze"
    QA_RELEASE = "qa-release"
    EXPIRY_BLOCK = "expiry-block"
    HOLD = "hold"
    IDENTIFY = "identify"
    CARTON_READ = "carton-read"
    DEFECT_VERDICT = "defect-verdict"
    SCAN_READ = "scan-read"  # a fixed scanner's read, paired with the OCR read of the same carton
    ALERT = "alert"
    MASTER_DATA = "master-data"


_INT_MAX = 2**53 - 1  # RFC 8785 numbers are IEEE doubles: larger integers are refused
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                            allow_nan=False)  # fmt: skip


def _plain(obj: Any) -> bool:
    """True when the C JSON encoder's compact, key-sorted output is exactly RFC 8785's.

    That holds for null, booleans, strings, integers within the IEEE-double range, lists and
    objects with ASCII keys: the escapes of both are the same (short forms for ``\\b \\f \\n
    \\r \\t``, ``\\u00xx`` for other controls, nothing else escaped). Floats (JCS formats
    them like ECMAScript), integers out of range, non-ASCII keys (JCS sorts by UTF-16 code
    units, Python by code points) and other types take the reference implementation."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if x is None or isinstance(x, (str, bool)):
            continue
        if isinstance(x, int):
            if -_INT_MAX <= x <= _INT_MAX:
                continue
            return False
        if isinstance(x, dict):
            for k in x:
                if not (isinstance(k, str) and k.isascii()):
                    return False
            stack.extend(x.values())
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
        else:
            return False
    return True


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) canonical encoding: the exact bytes that get hashed and signed.

    Events are plain JSON (no floats), which the C encoder writes identically about five times
    faster than the pure-Python ``rfc8785`` package; anything else, and any string that is not
    valid Unicode, goes through ``rfc8785`` (tests/unit/test_canonical.py proves the two agree)."""
    if _plain(obj):
        try:
            return _COMPACT.encode(obj).encode("utf-8")
        except (UnicodeEncodeError, RecursionError, ValueError):
            pass  # lone surrogates, nesting bombs: let rfc8785 give its own error
    return rfc8785.dumps(obj)


@dataclass(frozen=True, slots=True)
class Event:
    """One immutable ledger event."""

    id: str
    device_id: str
    seq: int
    ts: str
    kind: str
    actor: str
    payload: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """Every field except ``hash``: what the hash covers."""
        data = asdict(self)
        data.pop("hash")
        return data

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        return cls(
            id=str(data["id"]),
            device_id=str(data["device_id"]),
            seq=int(data["seq"]),
            ts=str(data["ts"]),
            kind=str(data["kind"]),
            actor=str(data["actor"]),
            payload=dict(data.get("payload") or {}),
            prev_hash=str(data["prev_hash"]),
            hash=str(data.get("hash", "")),
        )

    def sealed(self) -> Event:
        """A copy with ``hash`` computed from the other fields."""
        return Event(**{**self.body(), "hash": event_hash(self.body())})


def event_hash(body: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an event body (all fields but ``hash``)."""
    return hashlib.sha256(canonical_json(body)).hexdigest()
