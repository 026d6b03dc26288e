"""What each screen shows and does, against a real ledger file and a real sample directory."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from edge.panel.live import percentile
from edge.panel.routers.stock import expiry_state
from edge.panel.services import CARTON_TOPIC
from tests.panel.conftest import login
from tests.panel.support import GTIN_A, PanelEnv, carton, labels, publish_samples


def test_qa_release_refused_for_operator_and_done_by_qa(client: TestClient, env: PanelEnv) -> None:
    data = {"sku": "TEA-500", "lot": "T-0042", "reason": "re-inspected, cartons dry"}
    token = login(client, "op", env)
    r = client.post("/qa/release", data={**data, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 403 and r.headers["x-error-code"] == "FORBIDDEN"
    assert [b.lot for b in env.ledger.frozen_batches()] == ["T-0042"]
    token = login(client, "qa", env)
    page = client.get("/qa").text
    assert "T-0042" in page and "wet cartons at the gate" in page
    r = client.post("/qa/release", data={**data, "reason": "  ", "csrf_token": token})
    assert r.status_code == 409 and r.headers["x-error-code"] == "OVERRIDE_REASON_REQUIRED"
    r = client.post("/qa/release", data={**data, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert env.ledger.frozen_batches() == []
    release = [e for e in env.ledger.history(lot="T-0042") if e.kind == "qa-release"]
    assert release[0].actor == "user:qa" and release[0].payload["reason"] == data["reason"]


def test_review_confirm_books_a_signed_read_and_labels_the_sample(
    client: TestClient, env: PanelEnv
) -> None:
    token = login(client, "op", env)
    page = client.get("/review").text
    assert f'id="item-{env.r1}"' in page and f'id="item-{env.r2}"' in page
    img = client.get(f"/review/{env.r1}/image")
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    # a wrong check digit is refused and nothing is booked
    before = env.ledger.head()[0]
    r = client.post(
        f"/review/{env.r1}", data={"csrf_token": token, "gtin": "06901234567891", "lot": "A24B117"}
    )
    assert r.status_code == 422 and "06901234567891" in r.text
    assert env.ledger.head()[0] == before
    r = client.post(
        f"/review/{env.r1}",
        data={"csrf_token": token, "gtin": GTIN_A, "lot": "a24b117 ", "expiry": "2027-08-31"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    read = env.ledger.events(after_seq=before)[-1]
    assert read.kind == "carton-read" and read.actor == "user:op"
    assert read.payload["lot"] == "A24B117" and read.payload["source"] == "review"
    (label,) = labels(env)
    assert label["label"] == {"gtin": GTIN_A, "lot": "A24B117", "expiry": "2027-08-31"}
    assert label["labeled_by"] == "user:op" and label["status"] == "REVIEW"
    assert env.r1 not in env.samples.ids()  # the unlabeled copy is gone
    assert f'id="item-{env.r1}"' not in client.get("/review").text


def test_review_of_unreadable_carton_identifies_the_held_stock(
    client: TestClient, env: PanelEnv
) -> None:
    token = login(client, "op", env)
    held = [r for r in env.ledger.stock(sku="UNIDENTIFIED")]
    assert len(held) == 1
    r = client.post(
        f"/review/{env.r2}",
        data={"csrf_token": token, "gtin": GTIN_A, "lot": "B77"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert env.ledger.stock(sku="UNIDENTIFIED") == []
    assert [(s.sku, s.lot, s.location) for s in env.ledger.stock(lot="B77")] == [
        ("MILK-1L", "B77", held[0].location)
    ]


def test_unknown_gtin_in_review_is_explained(client: TestClient, env: PanelEnv) -> None:
    token = login(client, "op", env)
    r = client.post(
        f"/review/{env.r1}", data={"csrf_token": token, "gtin": "4006381333931", "lot": "X12"}
    )
    assert r.status_code == 422 and "主数据中没有该 GTIN 的商品" in r.text


def test_stock_expiry_colours_frozen_marks_and_search(client: TestClient, env: PanelEnv) -> None:
    login(client, "op", env)
    page = client.get("/stock").text
    rows = dict(
        re.findall(
            r'<tr class="(ex-[a-z]+(?: is-frozen)?)">\s*<td class="code">[^<]+</td>'
            r'<td class="code">([^<]+)</td>',
            page,
        )[i][::-1]
        for i in range(4)
    )
    assert rows == {
        "A24B117": "ex-ok",
        "A24B118": "ex-warning",
        "A24B119": "ex-blocked",
        "T-0042": "ex-ok is-frozen",
    }
    by_gtin = client.get("/stock", params={"q": GTIN_A}).text
    assert "A24B117" in by_gtin and "T-0042" not in by_gtin
    by_lot = client.get("/stock", params={"q": "t-0042"}).text
    assert "T-0042" in by_lot and "A24B117" not in by_lot
    assert "MILK-1L" in client.get("/stock", params={"q": "milk"}).text


def test_expiry_windows_match_the_ledger_config() -> None:
    from datetime import date

    today = date(2026, 11, 22)
    assert expiry_state("2026-11-29", today, 30, 7) == (7, "blocked")
    assert expiry_state("2026-11-30", today, 30, 7) == (8, "warning")
    assert expiry_state("2026-12-23", today, 30, 7) == (31, "ok")
    assert expiry_state("2026-11-21", today, 30, 7) == (-1, "expired")
    assert expiry_state(None, today, 30, 7) == (None, "none")


def test_live_view_lists_cartons_from_the_bus(client: TestClient, env: PanelEnv) -> None:
    login(client, "op", env)
    publish_samples(env.bus)
    page = client.get("/live").text
    for cid in ("c0001", "c0002", "c0003", "c0004", "c0005"):
        assert f'data-carton="{cid}"' in page
    assert page.index("c0005") < page.index("c0001"), "newest first"
    assert 'class="defectbox"' in page  # damage location drawn on the crop
    crop = client.get("/live/crop/c0004")
    assert crop.status_code == 200 and crop.content[:4] == b"\x89PNG"
    assert client.get("/live/crop/c0005").status_code == 404  # ERROR carton had no image


def test_charts_and_device_figures_come_from_real_events(client: TestClient, env: PanelEnv) -> None:
    login(client, "op", env)
    device = client.get("/device").text
    assert "未注册" in device  # no certificate in this node's trust dir
    assert "最近一小时没有纸箱" in device
    for i in range(1, 21):
        env.bus.publish(CARTON_TOPIC, carton(i, latency_ms=float(i)))
    feed = env.app.state.feed
    p50, p95, n = feed.latency()
    assert (p50, p95, n) == (10.0, 19.0, 20)
    device = client.get("/device").text
    assert "p50 10 ms · p95 19 ms" in device
    charts = client.get("/charts").text
    assert charts.count("<svg") == 3 and "已接受: 20 (100%)" in charts


def test_percentile_nearest_rank() -> None:
    assert percentile([5.0], 95) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([float(i) for i in range(1, 101)], 50) == 50.0


def test_equipment_shows_not_configured_never_invented(client: TestClient, env: PanelEnv) -> None:
    login(client, "op", env)
    page = client.get("/equipment").text
    assert page.count("本节点未配置") == 4  # agv, scanner, plc, mqtt
    pending = env.ledger.outbox_stats().pending
    assert f"{pending} 条事件待上传" in page


def test_device_lists_model_versions_from_the_manifest(client: TestClient, env: PanelEnv) -> None:
    from edge.vision.session import read_manifest

    login(client, "op", env)
    page = client.get("/device").text
    for name, entry in read_manifest().items():
        assert name in page and entry.version in page


def test_image_size_reads_png_and_jpeg_headers() -> None:
    import cv2
    import numpy as np

    from edge.panel.imagesize import DEFAULT, image_size

    img = np.zeros((37, 91, 3), np.uint8)
    for ext in (".png", ".jpg"):
        ok, buf = cv2.imencode(ext, img)
        assert ok and image_size(bytes(buf)) == (91, 37), ext
    assert image_size(b"not an image") == DEFAULT
    assert image_size(None) == DEFAULT


def test_unknown_or_malicious_review_ids_are_not_found(client: TestClient, env: PanelEnv) -> None:
    token = login(client, "op", env)
    for bad in ("..%2F..%2Fstate", "state", "00000000000000000001-000001", "abc"):
        assert client.get(f"/review/{bad}/image").status_code == 404, bad
        r = client.post(f"/review/{bad}", data={"csrf_token": token, "gtin": GTIN_A, "lot": "A12"})
        assert r.status_code == 404 and r.headers["x-error-code"] == "NOT_FOUND", bad


def test_live_feed_keeps_publish_order_with_concurrent_readers() -> None:
    import threading
    import time

    from edge.panel.live import LiveFeed
    from edge.runtime.bus import Bus

    bus = Bus()
    feed = LiveFeed(bus, keep=500)
    feed.start()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            feed.pump()  # competes with the feed thread for the same subscription
            time.sleep(0)

    readers = [threading.Thread(target=reader, name=f"reader-{i}") for i in range(2)]
    for t in readers:
        t.start()
    try:
        for i in range(500):
            bus.publish(CARTON_TOPIC, carton(i, crop=None))
        deadline = time.monotonic() + 10
        while feed.seq < 500 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        for t in readers:
            t.join()
        feed.close()
    ids = [c.event.carton_id for c in reversed(feed.recent())]
    assert ids == [f"c{i:04d}" for i in range(500)]
