"""Labels of uploaded samples through the cloud's API: code text checked by the code grammar,
defect class and box, re-labeling and disputes with history, roles, and operator corrections
that arrive already labeled from the edge (the real panel review queue, sample store and sync
agent). On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from cloud.db.models import Audit, Label
from cloud.services.labels import DEFECT_CLASSES
from edge.sync.config import SyncConfig
from edge.sync.samples import STATE_FILE, SampleUploader
from edge.vision.ocr.samples import SampleStore
from tests.loop.env import LoopCloud, png

GOOD = "(01)06901234567892(17)270831(10)A24B117"
BAD_CHECK = "(01)06901234567893(17)270831(10)A24B117"


def code(text: str, **more: Any) -> dict[str, Any]:
    return {"kind": "code", "text": text, **more}


def queue(cloud: LoopCloud, **params: Any) -> list[dict[str, Any]]:
    r = cloud.http.get("/v1/labels/queue", params=params, headers=cloud.login("labeler"))
    assert r.status_code == 200, r.text
    return list(r.json())


def label(cloud: LoopCloud, sample: int, body: dict[str, Any], role: str = "labeler") -> Any:
    return cloud.http.post(f"/v1/samples/{sample}/labels", json=body, headers=cloud.login(role))


def test_label_a_code_crop_then_relabel_keeps_history(cloud: LoopCloud) -> None:
    a = cloud.upload(png(1)).id
    b = cloud.upload(png(2)).id
    assert [s["id"] for s in queue(cloud)] == [a, b]
    assert queue(cloud)[0]["suggestion"] == "(01)06901234567892"

    r = label(cloud, a, code(" (01)06901234567892 (17)270831 (10)a24b117"))
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["status"] == "current" and first["who"] == "person:labeler-user"
    assert first["fields"] == {"gtin": "06901234567892", "lot": "A24B117", "expiry": "2027-08-31"}
    assert first["value"] == "(01)06901234567892 (17)270831 (10)A24B117"  # normalised
    assert [s["id"] for s in queue(cloud)] == [b]

    second = label(cloud, a, code("(01)06901234567892(17)270831(10)A24B118", replaces=first["id"]))
    assert second.status_code == 200, second.text
    assert second.json()["supersedes"] == first["id"]
    hist = cloud.http.get(f"/v1/samples/{a}/labels", headers=cloud.login("qa")).json()
    assert [(h["id"], h["status"]) for h in hist] == [
        (first["id"], "superseded"),
        (second.json()["id"], "current"),
    ]
    detail = cloud.http.get(f"/v1/samples/{a}", headers=cloud.login("labeler")).json()
    assert detail["status"] == "labeled" and detail["label"]["id"] == second.json()["id"]
    assert len(detail["history"]) == 2

    # someone labeled it meanwhile: the stale 'replaces' is refused, nothing overwritten
    stale = label(cloud, a, code(GOOD, replaces=first["id"]))
    assert stale.status_code == 400 and stale.json()["code"] == "LABEL_INVALID"
    with cloud.svc.sessions() as s:
        actions = [a.action for a in s.execute(select(Audit)).scalars()]
    assert actions.count("label.add") == 2


def test_code_grammar_refuses_bad_text_with_a_stable_code(cloud: LoopCloud) -> None:
    a = cloud.upload(png(3)).id
    for text in (BAD_CHECK, "(01)0690", "HELLO", "", "(17)271341"):
        r = label(cloud, a, code(text))
        assert r.status_code == 400, (text, r.text)
        assert r.json()["code"] == "CODE_INVALID", text
    r = label(cloud, a, {"kind": "code"})
    assert r.json()["code"] == "CODE_INVALID"
    # fields typed like in the edge panel's review form
    r = label(cloud, a, {"kind": "code", "fields": {"gtin": "6901234567892", "lot": "a1b2"}})
    assert r.status_code == 200 and r.json()["fields"] == {"gtin": "06901234567892", "lot": "A1B2"}
    r = label(cloud, a, {"kind": "code", "fields": {"gtin": "6901234567893", "lot": "a1b2"}})
    assert r.json()["code"] == "CODE_INVALID"
    with cloud.svc.sessions() as s:
        assert len(s.execute(select(Label)).scalars().all()) == 1


def test_validate_as_you_type(cloud: LoopCloud) -> None:
    h = cloud.login("labeler")

    def check(body: dict[str, Any]) -> dict[str, Any]:
        r = cloud.http.post("/v1/labels/validate", json=body, headers=h)
        assert r.status_code == 200, r.text
        return dict(r.json())

    typed = [check(code(GOOD[:n])) for n in (4, 12, len(GOOD))]
    assert [t["ok"] for t in typed] == [False, False, True]
    assert typed[0]["issues"][0]["code"] == "CODE_INVALID"
    assert typed[2]["fields"]["lot"] == "A24B117"
    wrong = check(code(BAD_CHECK))
    assert not wrong["ok"] and wrong["issues"][0]["field"] == "gtin"
    assert check({"kind": "defect", "class": "crush", "box": [1, 2, 30, 40]})["ok"]
    assert check({"kind": "defect", "class": "dent"})["issues"][0]["code"] == "LABEL_INVALID"
    assert not check({"kind": "defect", "class": "ok", "box": [1, 2, 30, 40]})["ok"]
    assert check({"kind": "code", "fields": {"gtin": "06901234567892", "lot": "L1X"}})["ok"]
    with cloud.svc.sessions() as s:
        assert s.execute(select(Label)).first() is None  # validation stores nothing


def test_dispute_requeues_and_relabel_resolves(cloud: LoopCloud) -> None:
    a = cloud.upload(png(4)).id
    first = label(cloud, a, code(GOOD)).json()
    assert queue(cloud) == []
    r = cloud.http.post(
        f"/v1/labels/{first['id']}/dispute",
        json={"reason": "the lot reads A24B118 under the loupe"},
        headers=cloud.login("qa"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "disputed" and r.json()["disputed_by"] == "person:qa-user"
    waiting = queue(cloud)
    assert [s["id"] for s in waiting] == [a] and waiting[0]["status"] == "disputed"
    assert waiting[0]["label"]["dispute_reason"].startswith("the lot")
    again = cloud.http.post(
        f"/v1/labels/{first['id']}/dispute", json={"reason": "twice"}, headers=cloud.login("qa")
    )
    assert again.status_code == 400 and again.json()["code"] == "LABEL_INVALID"
    fixed = label(cloud, a, code(GOOD.replace("A24B117", "A24B118"))).json()
    assert fixed["supersedes"] == first["id"] and queue(cloud) == []
    hist = cloud.http.get(f"/v1/samples/{a}/labels", headers=cloud.login("labeler")).json()
    assert [h["status"] for h in hist] == ["superseded", "current"]
    assert hist[0]["disputed_by"] == "person:qa-user"  # the dispute stays in the history
    missing = cloud.http.post(
        "/v1/labels/999999/dispute", json={"reason": "none"}, headers=cloud.login("qa")
    )
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


def test_defect_frames_take_a_class_and_a_box(cloud: LoopCloud) -> None:
    frame = cloud.upload(png(5, (120, 200)), {"kind": "defect", "score": 0.5}).id
    crop = cloud.upload(png(6)).id
    assert [s["id"] for s in queue(cloud, kind="defect")] == [frame]
    assert [s["id"] for s in queue(cloud, kind="code")] == [crop]
    ok = label(cloud, frame, {"kind": "defect", "class": "crush", "box": [10, 20, 100, 90]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["value"] == "crush" and ok.json()["fields"] == {"box": [10, 20, 100, 90]}
    outside = label(cloud, frame, {"kind": "defect", "class": "tear", "box": [150, 20, 60, 10]})
    assert outside.json()["code"] == "LABEL_INVALID" and "200x120" in outside.json()["detail"]
    assert label(cloud, frame, {"kind": "defect", "class": "dent"}).json()["code"] == (
        "LABEL_INVALID"
    )
    assert label(cloud, frame, code(GOOD)).json()["code"] == "LABEL_INVALID"  # wrong kind
    assert label(cloud, crop, {"kind": "defect", "class": "ok"}).json()["code"] == "LABEL_INVALID"
    assert label(cloud, frame, {"kind": "defect", "class": "ok"}).status_code == 200


def test_image_and_roles(cloud: LoopCloud) -> None:
    data = png(7)
    a = cloud.upload(data).id
    r = cloud.http.get(f"/v1/samples/{a}/image", headers=cloud.login("labeler"))
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "image/png"
    missing = cloud.http.get(f"/v1/samples/{a + 99}/image", headers=cloud.login("admin"))
    assert missing.status_code == 404
    # viewers and operators may not label; labelers may do nothing but label
    for role in ("viewer", "operator"):
        r = label(cloud, a, code(GOOD), role=role)
        assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
    assert cloud.http.get("/v1/devices", headers=cloud.login("labeler")).status_code == 403
    assert cloud.http.get("/v1/labels/queue").status_code == 401
    assert label(cloud, a, code(GOOD), role="admin").status_code == 200


def test_operator_corrections_arrive_labeled_from_the_edge(
    cloud: LoopCloud, tmp_path: Path
) -> None:
    """The edge panel's review queue relabels a sample; the sync agent uploads it; the cloud
    stores it with its label, by the device, and keeps it out of the work queue."""
    from edge.panel.review_store import SampleReviewQueue

    store = SampleStore(tmp_path / "samples", 10 * 2**20)
    img = np.random.default_rng(8).integers(0, 255, (48, 160, 3), dtype=np.uint8)
    read = {"status": "REVIEW", "confidence": 0.3, "text": "(01)0690123456789Z", "reason": None}
    sid = store.keep(img, read)
    unread = store.keep(img[:, ::-1].copy(), {**read, "status": "UNREADABLE", "confidence": 0.0})
    bad = store.keep(img[::-1].copy(), {**read, "label": {"gtin": "123", "lot": "L1"}})
    assert sid and unread and bad
    SampleReviewQueue(store).label(
        sid, {"gtin": "06901234567892", "lot": "A24B117", "expiry": "2027-08-31"}, "user:op1"
    )
    uploader = SampleUploader(
        store,
        cloud.client(cloud.enroll("edge-07")),
        "edge-07",
        tmp_path / STATE_FILE,
        SyncConfig(cloud_url="http://testserver"),
    )
    assert uploader.upload_round().uploaded == 3
    with cloud.svc.sessions() as s:
        rows = s.execute(select(Label)).scalars().all()
        refused = s.execute(select(Audit).where(Audit.action == "label.refused")).scalars().all()
        assert len(rows) == 1 and len(refused) == 1 and refused[0].code == "CODE_INVALID"
        got = rows[0]
        assert got.who == "device:edge-07" and got.status == "current" and got.value == ""
        assert got.fields == {"gtin": "06901234567892", "lot": "A24B117", "expiry": "2027-08-31"}
        assert "user:op1" in got.note
    waiting = queue(cloud)
    assert len(waiting) == 2  # the unreadable one and the one whose edge label was invalid
    assert all(w["label"] is None for w in waiting)


def test_defect_classes_match_the_defect_model() -> None:
    from fixtures.defects.render import CLASSES

    assert DEFECT_CLASSES == CLASSES


def test_migration_0005_matches_the_models(cloud: LoopCloud) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from cloud.db.models import Base

    with cloud.svc.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diffs if any(t in repr(d) for t in ("labels", "datasets", "dataset_m"))]
    assert ours == []
    assert {"labels", "datasets", "dataset_members"} <= set(Base.metadata.tables)


def test_one_live_label_per_sample_is_enforced_by_the_database(cloud: LoopCloud) -> None:
    from sqlalchemy.exc import IntegrityError

    a = cloud.upload(png(9)).id
    label(cloud, a, code(GOOD))
    with pytest.raises(IntegrityError), cloud.svc.sessions.begin() as s:
        s.add(Label(sample_pk=a, kind="code", value="x", fields={}, who="t", status="disputed"))
