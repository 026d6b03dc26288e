"""A fast, exact-equivalent check that stored event bytes are the ones their hash was made of.

``event_hash`` (edge.contracts.event) is the one definition of an event's hash; it runs the
pure-Python RFC 8785 encoder. Most of the time the ledger only needs to know "are these stored
bytes exactly the canonical bytes behind this hash?", and that can be proven much faster:
JSON-encode the row's columns in RFC 8785 key order with the stored payload text embedded
verbatim, and compare SHA-256. Equal digests mean equal bytes (collision resistance), so the
answer "yes" is a proof; "no" proves nothing and the caller falls back to the exact path.
The verdict is therefore always the exact one; only the cost changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

# JSON string encoding without ASCII escapes, as RFC 8785 writes strings (C implementation)
_enc: Callable[[Any], str] = encode_basestring


def proves_intact(row: tuple[object, ...], text: str, digest: str) -> bool:
    """A quick proof that a row is exactly as written; False means "ask ``event_hash``".

    The bytes hashed here are the row's strings JSON-encoded in RFC 8785's key order with the
    stored payload text embedded verbatim. If their SHA-256 equals the stored hash, they equal
    the canonical bytes the hash was made from (collision resistance), so every column, and
    the payload text byte for byte, is as written. Any other outcome is decided by the exact
    path (``event_hash`` + canonical check), so the verdict is always the exact one; this only
    spares the pure-Python RFC 8785 encoder for the common, intact row.
    """
    seq, eid, device, ts, kind, actor, _payload, prev, _digest = row
    if type(seq) is not int:
        return False
    enc = _enc
    try:
        blob = (
            f'{{"actor":{enc(actor)},"device_id":{enc(device)},"id":{enc(eid)},"kind":{enc(kind)},'
            f'"payload":{text},"prev_hash":{enc(prev)},"seq":{seq},"ts":{enc(ts)}}}'
        )
        return hashlib.sha256(blob.encode()).hexdigest() == digest
    except (TypeError, UnicodeEncodeError):  # a non-text column, or lone surrogates
        return False
