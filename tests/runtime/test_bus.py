from __future__ import annotations

import threading

from edge.runtime.bus import Bus


def test_fan_out_and_prefix_topics() -> None:
    bus = Bus()
    exact = bus.subscribe(["ledger.appended"])
    prefix = bus.subscribe(["ledger.*"])
    other = bus.subscribe(["agv.state"])
    assert bus.publish("ledger.appended", {"seq": 1}) == 2
    assert bus.publish("ledger.frozen", {"lot": "A"}) == 1
    m = exact.get(0.1)
    assert m is not None and m.payload == {"seq": 1}
    assert exact.get(0.01) is None
    assert [prefix.get(0.1).topic, prefix.get(0.1).topic] == ["ledger.appended", "ledger.frozen"]  # type: ignore[union-attr]
    assert other.get(0.01) is None


def test_slow_subscriber_drops_oldest_and_never_blocks_publisher() -> None:
    bus = Bus()
    slow = bus.subscribe(["x"], maxsize=3)
    for n in range(10):
        bus.publish("x", n)
    assert slow.dropped == 7
    assert [slow.get(0.1).payload for _ in range(3)] == [7, 8, 9]  # type: ignore[union-attr]
    assert bus.stats()["dropped"] == 7


def test_concurrent_publishers_deliver_everything() -> None:
    bus = Bus()
    sub = bus.subscribe(["t"], maxsize=10_000)

    def pump(base: int) -> None:
        for n in range(1000):
            bus.publish("t", base + n)

    threads = [threading.Thread(target=pump, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = {sub.get(0.1).payload for _ in range(4000)}  # type: ignore[union-attr]
    assert got == set(range(4000))


def test_unsubscribe_stops_delivery() -> None:
    bus = Bus()
    sub = bus.subscribe(["t"])
    bus.unsubscribe(sub)
    assert bus.publish("t", 1) == 0
