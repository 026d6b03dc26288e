"""The outbox the sync agent drains: signed in the event's transaction, or later in order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.contracts.envelope import DeviceKey, verify_envelope
from edge.ledger import Ledger
from edge.trust.keys import Identity
from edge.trust.signer import DeviceSigner
from tests.ledger.helpers import ACTOR, Clock, seed
from tests.trust.pki import make_ca, make_device


@pytest.fixture
def identity(tmp_path: Path) -> Identity:
    return make_device(make_ca(tmp_path), "edge-01")


class FlakySigner:
    """A real signer that fails while ``broken`` is set (e.g. a key store hiccup)."""

    def __init__(self, inner: DeviceSigner) -> None:
        self.inner, self.broken = inner, False

    @property
    def device_id(self) -> str:
        return self.inner.device_id

    def sign_event(self, event: dict[str, Any], *, model_version: str | None = None) -> str:
        if self.broken:
            raise OSError("key store unavailable")
        return self.inner.sign_event(event, model_version=model_version)


def test_signed_in_the_same_transaction(tmp_path: Path, identity: Identity, clock: Clock) -> None:
    key = DeviceKey.from_cert(identity.cert)
    with Ledger.open(
        tmp_path / "l.db", "edge-01", signer=DeviceSigner(identity), clock=clock
    ) as led:
        seed(led)
        r = led.record_read(
            {"gtin": "09506000134352"}, actor="device:edge-01", model_version="ocr@3"
        )
        rows = led.outbox_pending(100)
        assert [seq for seq, _id, _env in rows] == list(range(1, r.event.seq + 1))
        _seq, event_id, envelope = rows[-1]
        checked = verify_envelope(envelope, key)
        assert checked.event == r.event.to_dict() and checked.model_version == "ocr@3"
        assert event_id == r.event.id
        assert led.outbox_stats().unsigned == 0


def test_unenrolled_node_keeps_working_then_signs_in_order(
    tmp_path: Path, identity: Identity, clock: Clock
) -> None:
    flaky = FlakySigner(DeviceSigner(identity))
    with Ledger.open(tmp_path / "l.db", "edge-01", clock=clock) as led:
        seed(led)
        led.receive("SKU-A", "L1", 5, actor=ACTOR)
        stats = led.outbox_stats()
        assert stats.pending == 9 and stats.unsigned == 9 and stats.oldest_ts
        assert led.outbox_pending(100) == []  # nothing to send before enrollment
    with Ledger.open(tmp_path / "l.db", "edge-01", clock=clock, signer=flaky) as led:
        flaky.broken = True
        led.receive("SKU-A", "L1", 1, actor=ACTOR)  # signing failure never stops the dock
        flaky.broken = False
        led.receive("SKU-A", "L1", 1, actor=ACTOR)  # signed at once, but waits behind 1..10
        assert led.outbox_pending(100) == []
        assert led.sign_pending(flaky, batch=4) == 10
        rows = led.outbox_pending(100)
        assert [r[0] for r in rows] == list(range(1, 12))
        key = DeviceKey.from_cert(identity.cert)
        assert [verify_envelope(r[2], key).seq for r in rows] == list(range(1, 12))


def test_ack_removes_only_acknowledged_rows(ledger: Ledger, identity: Identity) -> None:
    ledger.sign_pending(DeviceSigner(identity))
    assert ledger.outbox_ack(5) == 5
    assert ledger.outbox_ack(3) == 0  # idempotent, never goes backwards
    assert [r[0] for r in ledger.outbox_pending(2)] == [6, 7]
    assert ledger.outbox_stats().pending == 3
    assert len(ledger.events()) == 8  # the log itself is never trimmed
    assert ledger.conn.execute(
        "SELECT value FROM meta WHERE key = 'outbox_acked_seq'"
    ).fetchone() == ("5",)


def test_ack_beyond_the_local_head_means_local_loss(ledger: Ledger) -> None:
    from edge.contracts.errors import DockgateError, ErrorCode

    head = ledger.head()[0]
    with pytest.raises(DockgateError) as exc:
        ledger.outbox_ack(head + 5)
    assert exc.value.code == ErrorCode.CHAIN_FORK
    assert ledger.outbox_stats().pending == head  # nothing dropped
