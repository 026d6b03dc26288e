"""``Ledger.transaction()``: several appends (a carton's read, verdict, receipt, putaway) as one."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest

from edge.contracts.errors import DockgateError, ErrorCode
from edge.ledger import Ledger
from tests.ledger.helpers import ACTOR, Clock, seed


def test_all_or_nothing(ledger: Ledger) -> None:
    head = ledger.head()
    with pytest.raises(RuntimeError), ledger.transaction():
        ledger.record_read({"gtin": "09506000134352"}, actor="device:edge-01")
        ledger.receive("SKU-B", "L1", 5, actor=ACTOR)
        raise RuntimeError("PLC gone before the carton was booked")
    assert ledger.head() == head and ledger.stock() == []
    with ledger.transaction():
        read = ledger.record_read({"gtin": "09506000134352"}, actor="device:edge-01")
        got = ledger.receive("SKU-B", "L1", 5, actor=ACTOR)
        slot = ledger.choose_putaway_slot("SKU-B", "L1")  # sees the uncommitted receipt
        ledger.putaway("SKU-B", "L1", 5, to=slot, actor=ACTOR)
    assert got.event.prev_hash == read.event.hash
    assert [(s.location, s.qty) for s in ledger.stock()] == [("A-01", 5)]
    assert ledger.verify().ok


def test_a_refusal_inside_undoes_only_itself(ledger: Ledger) -> None:
    with ledger.transaction():
        ledger.receive("SKU-A", "L1", 2, actor=ACTOR)
        with pytest.raises(DockgateError) as exc:
            ledger.ship("SKU-A", "L1", 9, from_location="INBOUND", actor=ACTOR)
        assert exc.value.code == ErrorCode.NEGATIVE_STOCK
        with ledger.transaction():  # nested: joins the outer block
            ledger.receive("SKU-A", "L1", 1, actor=ACTOR)
    assert [s.qty for s in ledger.stock()] == [3]
    seqs = [e.seq for e in ledger.events()]
    assert seqs == list(range(1, len(seqs) + 1)) and ledger.verify().ok


def test_other_threads_wait_for_the_block(ledger: Ledger) -> None:
    done: list[int] = []
    with ledger.transaction():
        ledger.receive("SKU-A", "L1", 2, actor=ACTOR)
        t = threading.Thread(
            target=lambda: done.append(ledger.receive("SKU-A", "L2", 1, actor=ACTOR).event.seq)
        )
        t.start()
        t.join(0.3)
        assert done == []  # blocked behind the open transaction
        mine = ledger.receive("SKU-A", "L1", 1, actor=ACTOR).event.seq
    t.join()
    assert done == [mine + 1] and ledger.verify().ok


def test_storage_full_inside_a_block_sinks_the_block(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.db", "edge-01", clock=Clock(), max_size_mb=1) as led:
        seed(led)
        head = led.head()
        with pytest.raises(DockgateError) as exc, led.transaction():
            for i in range(1000):
                # a careless caller swallows the error: the block must still fail
                with contextlib.suppress(DockgateError):
                    led.record_read({"n": i, "pad": "x" * 4000}, actor="device:edge-01")
        assert exc.value.code == ErrorCode.STORAGE_FULL
        assert led.head() == head and led.verify().ok
