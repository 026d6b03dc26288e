"""Rollouts in the cloud over real HTTP (TestClient) on SQLite and PostgreSQL: device reports and
directives, ETag, the evaluator's promotions and rollbacks, device refusals, operator actions."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from cloud.db.models import utcnow
from cloud.rollouts import service
from cloud.rollouts.plan import bucket
from edge.contracts.ota import OtaReport, RefusedRelease
from tests.rollouts_cloud.env import (
    BAD,
    MODEL,
    A,
    B,
    RolloutEnv,
    good,
    rollout_env,
)

FAST = [
    {
        "name": "canary",
        "percent": 10,
        "devices": ["edge-000"],
        "min_soak_s": 1,
        "min_observations": 100,
    },
    {"name": "half", "percent": 50, "min_soak_s": 1, "min_observations": 100},
    {"name": "all", "percent": 100, "min_soak_s": 1, "min_observations": 100},
]


def canary(device_id: str, rollout_id: str = "defect-b") -> bool:
    return device_id == "edge-000" or bucket(rollout_id, device_id) * 100 < 10


def step(env: RolloutEnv, agree_b: float = 0.97, n: int = 60) -> None:
    """Every device reports a window of figures for the version it runs, then follows the answer."""
    for d in env.devices:
        figures = {d.running: good(n, agree_b if d.running == B else 0.97)}
        directive = d.report(figures)
        acting = [a.version for a in directive.assignments if not a.shadow]
        assert acting, directive
        d.running = acting[0]


def stage_start(env: RolloutEnv, headers: dict[str, str]) -> dt.datetime:
    return dt.datetime.fromisoformat(env.detail(headers)["stage_started_at"])


def wait_soak(env: RolloutEnv, headers: dict[str, str], soak_s: float) -> None:
    end = stage_start(env, headers) + dt.timedelta(seconds=soak_s + 0.05)
    time.sleep(max(0.0, (end - utcnow()).total_seconds()))


@pytest.mark.slow  # three real soaks; ~10 s on a quiet box, 20 s on the loaded one
def test_good_release_goes_canary_to_all_without_operator(env: RolloutEnv) -> None:
    admin, viewer = env.cloud.login("admin"), env.cloud.login("viewer")
    env.add_devices(12)
    # no rollout yet: the repository's active pointer (A) is the fleet default
    assert {d.acting() for d in env.devices} == {A}
    env.create(admin, stages=FAST)
    assert env.detail(viewer)["state"] == "pending"
    env.evaluate()
    detail = env.detail(viewer)
    assert (detail["state"], detail["phase"]) == ("running", "canary")
    wanted = {d.id for d in env.devices if canary(d.id)}
    on_b = {d.id for d in env.devices if d.acting() == B}
    assert on_b == wanted and "edge-000" in on_b and len(on_b) < 10

    step(env)  # canaries learn B from the answer
    start = stage_start(env, viewer)
    step(env)
    step(env)
    # gates pass but the soak is not over: hold
    with env.svc.sessions.begin() as s:
        service.evaluate_rollout(s, "defect-b", start + dt.timedelta(seconds=0.5))
    assert env.detail(viewer)["phase"] == "canary"
    wait_soak(env, viewer, 1)
    env.evaluate()
    detail = env.detail(viewer)
    assert detail["phase"] == "wave 1" and detail["stage"] == "half", detail["reason"]
    promote = [d for d in detail["decisions"] if d["action"] == "promote"][-1]
    assert promote["actor"] == "rollout-evaluator"
    assert promote["figures"]["candidate"]["observations"] >= 100
    assert all("passed" in g for g in promote["figures"]["gates"])
    # the half wave: only devices in it (bucket < 50 % or the named canary) are told to run B
    for d in env.devices:
        in_wave = d.id == "edge-000" or bucket("defect-b", d.id) < 0.5
        assert (d.acting() == B) == in_wave, d.id
    step(env)
    step(env)
    wait_soak(env, viewer, 1)
    env.evaluate()
    assert env.detail(viewer)["stage"] == "all"
    step(env)
    step(env)
    wait_soak(env, viewer, 1)
    env.evaluate()
    detail = env.detail(viewer)
    assert detail["state"] == "completed", detail
    assert {d.acting() for d in env.devices} == {B}
    assert [d["action"] for d in detail["decisions"]] == [
        "create",
        "start",
        "promote",
        "promote",
        "complete",
    ]
    # a completed rollout keeps deciding what devices run (not the repository's pointer)
    late = env.device("edge-late")
    assert late.acting() == B


@pytest.mark.slow  # ~8 s on a quiet box, up to 20 s on PostgreSQL on the loaded one
def test_agreement_drop_rolls_every_canary_back(env: RolloutEnv) -> None:
    admin, viewer = env.cloud.login("admin"), env.cloud.login("viewer")
    env.add_devices(12)
    env.create(admin, stages=FAST)
    env.evaluate()
    step(env)
    canaries = [d for d in env.devices if d.running == B]
    assert canaries
    for _ in range(2):
        step(env, agree_b=0.6)  # canaries' OCR agrees with the scanner far less often
    env.evaluate()
    detail = env.detail(viewer)
    assert detail["state"] == "rolled_back"
    assert "ocr_scanner_agreement failed" in detail["reason"]
    rollback = next(d for d in detail["decisions"] if d["action"] == "rollback")
    assert rollback["actor"] == "rollout-evaluator"
    assert rollback["figures"]["candidate"]["agreement_pairs"] >= 20
    gates = {g["gate"]: g["verdict"] for g in detail["gates"]}
    assert gates["ocr_scanner_agreement"] == "failed"
    # every device, canaries first, is told to run A again, under the same rollout
    for d in env.devices:
        directive = d.directive()
        assert [(a.version, a.rollout_id) for a in directive.assignments] == [(A, "defect-b")]
    entries = [e for e in env.audit(admin) if e["action"] == "rollout.rollback"]
    assert entries and entries[0]["actor"] == "rollout-evaluator"
    assert entries[0]["detail"]["figures"]["baseline"]["observations"] > 0
    # nothing moves once rolled back, and a new rollout of the model may start
    env.evaluate()
    assert env.detail(viewer)["state"] == "rolled_back"
    env.create(admin, id="defect-b-again", stages=FAST)


def test_device_refusal_is_never_reassigned(env: RolloutEnv) -> None:
    admin, viewer = env.cloud.login("admin"), env.cloud.login("viewer")
    env.add_devices(20)
    env.create(admin, stages=FAST)
    env.evaluate()
    pilot = env.devices[0]
    assert pilot.id == "edge-000" and pilot.acting() == B
    pilot.running = A
    pilot.refused = [RefusedRelease(version=B, sha256="ab" * 32, reason="crash loop")]
    directive = pilot.report()
    assert [a.version for a in directive.assignments] == [A]
    detail = env.detail(viewer)
    assert [r["device_id"] for r in detail["refusals"]] == ["edge-000"]
    assert any(
        d["action"] == "device_rollback" and d["actor"] == "device:edge-000"
        for d in detail["decisions"]
    )
    # the rollout goes on to 100 %: the device that refused B stays on A
    for _ in range(3):
        for op in ("promote",):
            r = env.cloud.http.post(f"/v1/rollouts/defect-b/{op}", json={}, headers=admin)
            assert r.status_code == 200, r.text
        assert pilot.acting() == A
    assert env.detail(viewer)["state"] == "completed"
    assert pilot.acting() == A
    assert {d.acting() for d in env.devices[1:]} == {B}
    codes = [e["code"] for e in env.audit(admin) if e["action"] == "rollout.device_rollback"]
    assert codes == ["OTA_DEVICE_ROLLBACK"]


def test_assignments_etag_and_304(env: RolloutEnv) -> None:
    admin = env.cloud.login("admin")
    pilot, other = env.add_devices(2)
    r = pilot.poll()
    assert r.status_code == 200
    etag = r.headers["etag"].strip('"')
    assert etag == r.json()["etag"]
    again = pilot.poll(etag)
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == f'"{etag}"'
    env.create(admin, stages=FAST)
    env.evaluate()
    changed = pilot.poll(etag)
    assert changed.status_code == 200
    assert changed.json()["assignments"][0]["version"] == B
    assert changed.headers["etag"] != f'"{etag}"'
    new = changed.headers["etag"].strip('"')
    assert pilot.poll(new).status_code == 304
    # the report answers the same directive (same ETag)
    assert pilot.report().etag == new
    # a weak or listed If-None-Match matches too
    headers = pilot.headers("GET", "/v1/ota/assignments", b"")
    headers["If-None-Match"] = f'"nope", W/"{new}"'
    assert env.cloud.http.get("/v1/ota/assignments", headers=headers).status_code == 304
    # the canary on B asks again sooner than a device on A (a rollback must reach it fast)
    assert pilot.report().poll_after_s == 0.5
    assert other.poll().json()["poll_after_s"] == 2.0


def test_operator_actions_roles_and_audit(env: RolloutEnv) -> None:
    admin, operator, viewer = (env.cloud.login(r) for r in ("admin", "operator", "viewer"))
    env.add_devices(10)
    http = env.cloud.http
    # creating needs admin
    r = http.post("/v1/rollouts", json={"spec": {}}, headers=operator)
    assert r.status_code in (403, 422)
    env.create(admin, stages=FAST)
    env.evaluate()
    for headers, status in ((operator, 403), (viewer, 403), ({}, 401)):
        r = http.post("/v1/rollouts/defect-b/pause", json={"reason": "x"}, headers=headers)
        assert r.status_code == status, r.text
        assert r.json()["code"] == ("FORBIDDEN" if status == 403 else "UNAUTHENTICATED")
    assert http.get("/v1/rollouts", headers=viewer).json()[0]["state"] == "running"
    r = http.post("/v1/rollouts/defect-b/pause", json={"reason": "night shift"}, headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "paused"
    env.evaluate()  # a paused rollout is not judged
    assert env.detail(viewer)["state"] == "paused"
    r = http.post("/v1/rollouts/defect-b/pause", json={}, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "ROLLOUT_CONFLICT"
    assert (
        http.post("/v1/rollouts/defect-b/resume", json={}, headers=admin).json()["state"]
        == "running"
    )
    r = http.post("/v1/rollouts/defect-b/promote", json={"reason": "looks fine"}, headers=admin)
    assert r.json()["phase"] == "wave 1"
    r = http.post("/v1/rollouts/defect-b/abort", json={"reason": "wrong build"}, headers=admin)
    assert r.json()["state"] == "aborted"
    assert {d.acting() for d in env.devices} == {A}
    r = http.post("/v1/rollouts/defect-b/resume", json={}, headers=admin)
    assert r.status_code == 409
    r = http.post("/v1/rollouts/defect-b/launch", json={}, headers=admin)
    assert r.status_code == 404
    actions = [
        (e["actor"], e["action"]) for e in env.audit(admin) if e["action"].startswith("rollout.")
    ]
    assert actions == [
        ("person:admin-user", "rollout.create"),
        ("rollout-evaluator", "rollout.start"),
        ("person:admin-user", "rollout.pause"),
        ("person:admin-user", "rollout.resume"),
        ("person:admin-user", "rollout.promote"),
        ("person:admin-user", "rollout.abort"),
    ]
    pause = next(e for e in env.audit(admin) if e["action"] == "rollout.pause")
    assert pause["detail"]["reason"] == "night shift"
    assert set(pause["detail"]["figures"]) == {"candidate", "baseline"}


def test_create_checks_releases_and_one_rollout_per_model(env: RolloutEnv) -> None:
    admin = env.cloud.login("admin")
    http = env.cloud.http
    spec = {"id": "x", "model": MODEL, "from_version": A, "to_version": "7.0.0", "stages": FAST}
    r = http.post("/v1/rollouts", json={"spec": spec}, headers=admin)
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    spec["to_version"] = A
    r = http.post("/v1/rollouts", json={"spec": spec}, headers=admin)
    assert r.status_code == 422  # A -> A
    env.create(admin, stages=FAST)
    r = http.post(
        "/v1/rollouts", json={"spec": {**spec, "id": "y", "to_version": BAD}}, headers=admin
    )
    assert r.status_code == 409 and r.json()["code"] == "ROLLOUT_CONFLICT"
    releases = http.get("/v1/ota/releases", headers=admin).json()
    assert sorted(r["version"] for r in releases) == [A, B, BAD]
    assert all(r["target"].startswith(f"{MODEL}/") and len(r["sha256"]) == 64 for r in releases)


def test_shadow_and_wait_for_operator(env: RolloutEnv) -> None:
    admin, viewer = env.cloud.login("admin"), env.cloud.login("viewer")
    env.add_devices(10)
    env.create(admin, stages=FAST, shadow=True, auto_promote=False)
    env.evaluate()
    pilot = env.devices[0]
    directive = pilot.directive()
    assert [(a.version, a.shadow) for a in directive.assignments] == [(A, False), (B, True)]
    assert all(a.rollout_id == "defect-b" for a in directive.assignments)
    # canaries report B's shadow figures beside A's; the gates judge B
    for _ in range(3):
        for d in env.devices:
            figs = {A: good(60)}
            if canary(d.id):
                figs[B] = good(60).model_copy(update={"disagreements": 2})
            d.report(figs)
    wait_soak(env, viewer, 1)
    env.evaluate()
    detail = env.detail(viewer)
    assert detail["state"] == "waiting_for_operator", detail["reason"]
    assert detail["figures"]["candidate"]["disagreements"] > 0
    r = env.cloud.http.post("/v1/rollouts/defect-b/promote", json={}, headers=admin)
    assert r.json()["phase"] == "wave 1"
    # after the canary stage B acts (no more shadow)
    assert [(a.version, a.shadow) for a in pilot.directive().assignments] == [(B, False)]


def test_device_authentication_and_duplicate_reports(env: RolloutEnv) -> None:
    admin, viewer = env.cloud.login("admin"), env.cloud.login("viewer")
    pilot, other = env.add_devices(2)
    http = env.cloud.http
    r = http.post("/v1/ota/report", content=b"{}")
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    r = http.get("/v1/ota/assignments")
    assert r.status_code == 401
    # a report naming another device
    r = pilot.send_report(OtaReport(device_id=other.id))
    assert r.status_code == 403 and r.json()["code"] == "DEVICE_MISMATCH"
    # a signed request cannot be replayed
    body = OtaReport(device_id=pilot.id).model_dump_json().encode()
    headers = pilot.headers("POST", "/v1/ota/report", body)
    assert http.post("/v1/ota/report", content=body, headers=headers).status_code == 200
    r = http.post("/v1/ota/report", content=body, headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "REPLAY"
    # a resent report (same report_seq, new signature) is counted once
    env.create(admin, stages=FAST)
    env.evaluate()
    rep = OtaReport.model_validate(
        {
            "device_id": pilot.id,
            "report_seq": 50,
            "models": [{"name": MODEL, "running": B, "figures": {B: good(80).model_dump()}}],
        }
    )
    assert pilot.send_report(rep).status_code == 200
    assert pilot.send_report(rep).status_code == 200
    assert env.detail(viewer)["figures"]["candidate"]["observations"] == 80
    # garbage is refused with a code
    bad = b'{"device_id": "edge-000", "models": [{"name": ""}]}'
    r = http.post(
        "/v1/ota/report", content=bad, headers=pilot.headers("POST", "/v1/ota/report", bad)
    )
    assert r.status_code == 422 and r.json()["code"] == "EVENT_INVALID"


def test_background_evaluator_starts_and_judges(tmp_path: Path, repo_template: Path) -> None:
    with rollout_env(f"sqlite:///{tmp_path}/c.db", tmp_path, repo_template, eval_s=0.2) as env:
        admin, viewer = env.cloud.login("admin"), env.cloud.login("viewer")
        env.add_devices(10)
        env.create(admin, stages=FAST)
        deadline = time.monotonic() + 10
        while env.detail(viewer)["state"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert env.detail(viewer)["state"] == "running"
        step(env)
        for _ in range(3):
            step(env, agree_b=0.5)
        crossed = time.monotonic()
        while env.detail(viewer)["state"] != "rolled_back" and time.monotonic() < crossed + 10:
            time.sleep(0.1)
        assert env.detail(viewer)["state"] == "rolled_back"
        assert time.monotonic() - crossed < 2.0


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_figures_add_up_per_device_window_and_are_pruned(env: RolloutEnv) -> None:
    from sqlalchemy import select

    from cloud.db.models import OtaFigures

    (pilot,) = env.add_devices(1)
    t0 = utcnow()
    slow = good(100).model_copy(update={"latency_p95_ms": 100.0, "mean_confidence": 0.5})
    fast = good(300).model_copy(update={"latency_p95_ms": 20.0, "mean_confidence": 0.9})

    def report(seq: int, fig: object, at: dt.datetime) -> None:
        rep = OtaReport.model_validate(
            {
                "device_id": pilot.id,
                "report_seq": seq,
                "models": [{"name": MODEL, "running": A, "figures": {A: fig}}],
            }
        )
        with env.svc.sessions.begin() as s:
            service.apply_report(s, pilot.id, rep, at, window_s=60)

    report(1, slow, t0)
    report(2, fast, t0 + dt.timedelta(seconds=30))  # same window
    report(2, fast, t0 + dt.timedelta(seconds=31))  # a resend: counted once
    report(3, slow, t0 + dt.timedelta(seconds=61))  # the window is full: a new one
    with env.svc.sessions.begin() as s:
        rows = s.execute(select(OtaFigures).order_by(OtaFigures.id)).scalars().all()
        assert [r.observations for r in rows] == [400, 100]
        assert rows[0].latency_p95_ms == pytest.approx(40.0)  # weighted by observations
        assert rows[0].mean_confidence == pytest.approx(0.8)
        assert rows[0].agreement_pairs == 200
        total = service.aggregate(s, MODEL, A, t0)
        assert total.observations == 500 and total.latency_p95_ms == pytest.approx(52.0)
        # retention: windows older than the limit go
        assert service.prune_figures(s, dt.timedelta(days=14)) == 0
        for r in rows:
            r.at = t0 - dt.timedelta(days=15)
    with env.svc.sessions.begin() as s:
        assert service.prune_figures(s, dt.timedelta(days=14)) == 2


def test_two_transactions_finding_the_same_new_release_both_succeed(env: RolloutEnv) -> None:
    """The evaluator and a rollout being created both record a new release: on PostgreSQL the
    second insert waited for the first to commit and then failed its unique key (a 500 from
    ``POST /v1/rollouts`` in CI). Now the second one finds the release recorded."""
    from cloud.db.models import OtaRelease

    with env.svc.sessions.begin() as s:
        s.execute(delete(OtaRelease))
    results: dict[str, int | BaseException] = {}

    def second() -> None:
        try:
            with env.svc.sessions.begin() as s2:
                results["second"] = service.sync_releases(s2, env.repo)
        except BaseException as exc:  # the thread's failure is the test's result
            results["second"] = exc

    with env.svc.sessions.begin() as s1:
        results["first"] = service.sync_releases(s1, env.repo)
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)  # the second transaction reads the same empty table and waits to insert
    t.join(30)
    assert results == {"first": 3, "second": 0}, results
    with env.svc.sessions() as s:
        versions = sorted(s.execute(select(OtaRelease.version)).scalars())
    assert versions == [A, B, BAD]
