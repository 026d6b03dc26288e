"""Per-version figures windows: deltas reported once, a failed send carried into the next."""

from __future__ import annotations

from ota.figures import MAX_LATENCIES, FiguresWindow


def test_window_is_taken_once_and_given_back_when_the_send_fails() -> None:
    w = FiguresWindow()
    for i in range(10):
        w.observe("1.0.0", latency_ms=float(i), confidence=0.9, review=i < 2, defect=i == 0)
    w.observe("1.0.0", error=True)
    w.agreement("1.0.0", pairs=8, agreements=7)
    w.observe("1.1.0", confidence=0.5, count=4)
    w.disagreement("1.1.0", 3)

    first = w.take()
    figures = first.figures()
    a, b = figures["1.0.0"], figures["1.1.0"]
    assert (a.observations, a.errors, a.review_or_unreadable, a.defects) == (11, 1, 2, 1)
    assert (a.agreement_pairs, a.agreements) == (8, 7)
    assert abs(a.mean_confidence - 0.9) < 1e-9 and 8.0 <= a.latency_p95_ms <= 9.0
    assert (b.observations, b.disagreements, b.mean_confidence) == (4, 3, 0.5)
    assert w.take().figures() == {}  # taken: the next window starts empty

    w.observe("1.0.0", confidence=0.7)
    w.give_back(first)  # the report failed: carried into the next one, counted once
    again = w.take().figures()["1.0.0"]
    assert again.observations == 12 and again.agreements == 7
    assert abs(again.mean_confidence - (0.9 * 10 + 0.7) / 11) < 1e-9


def test_latency_samples_are_bounded() -> None:
    w = FiguresWindow()
    for _ in range(MAX_LATENCIES + 500):
        w.observe("1.0.0", latency_ms=5.0)
    window = w.take()
    assert len(window.counts["1.0.0"].latencies_ms) == MAX_LATENCIES
    assert window.figures()["1.0.0"].observations == MAX_LATENCIES + 500
