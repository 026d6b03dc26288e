"""Rollout domain model (cloud/rollouts): stable canaries, waves, soak, gates, rollback, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cloud.rollouts.gates import GateThresholds, Verdict, VersionFigures, evaluate
from cloud.rollouts.plan import Assignment, Rollout, RolloutSpec, Stage, State, bucket

T0 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
FLEET = [f"edge-{i:03d}" for i in range(200)]
GOOD = VersionFigures(
    observations=500,
    errors=1,
    latency_p95_ms=40.0,
    mean_confidence=0.93,
    review_or_unreadable=20,
    defects=25,
    agreement_pairs=300,
    agreements=291,
)


def spec(**kwargs: object) -> RolloutSpec:
    base: dict[str, object] = {
        "id": "defect-1-3-0",
        "model": "defect",
        "from_version": "1.2.0",
        "to_version": "1.3.0",
        "stages": [
            Stage(name="canary", percent=5, devices=["edge-pilot"], min_soak_s=600),
            Stage(name="25%", percent=25, min_soak_s=600),
            Stage(name="all", percent=100, min_soak_s=600),
        ],
    }
    return RolloutSpec.model_validate({**base, **kwargs})


def on_b(rollout: Rollout, fleet: list[str]) -> set[str]:
    return {d for d in fleet if rollout.assignment(d).run == rollout.spec.to_version}


def test_buckets_are_stable_and_spread_evenly() -> None:
    assert bucket("r1", "edge-001") == bucket("r1", "edge-001")
    assert bucket("r1", "edge-001") != bucket("r2", "edge-001")  # each rollout picks its own
    share = sum(bucket("r1", f"dev-{i}") < 0.10 for i in range(20_000)) / 20_000
    assert 0.09 < share < 0.11


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=50, unique=True))
def test_every_wave_contains_the_one_before(devices: list[str]) -> None:
    rollout = Rollout(spec(), T0)
    waves = [{d for d in devices if rollout.in_stage(d, i)} for i in range(3)]
    assert waves[0] <= waves[1] <= waves[2] == set(devices)


def test_a_good_release_goes_canary_to_100_percent_without_an_operator() -> None:
    rollout = Rollout(spec(), T0)
    canaries = on_b(rollout, [*FLEET, "edge-pilot"])
    assert "edge-pilot" in canaries and 2 <= len(canaries) <= 30
    now = T0
    sizes = [len(canaries)]
    for wave in range(3):
        rollout.tick(now + timedelta(seconds=599), GOOD, GOOD)  # soak not over: hold
        assert rollout.state is State.RUNNING and rollout.stage_index == wave
        now += timedelta(seconds=600)
        rollout.tick(now, GOOD, GOOD)
        sizes.append(len(on_b(rollout, FLEET)))
    assert rollout.state is State.COMPLETED and sizes[-1] == 200
    assert sizes == sorted(sizes)
    assert [e.action for e in rollout.audit] == ["start", "promote", "promote", "complete"]
    assert all(e.actor == "system" and e.figures for e in rollout.audit[1:])


def test_not_enough_observations_holds_the_stage() -> None:
    rollout = Rollout(spec(), T0)
    few = GOOD.model_copy(update={"observations": 10})
    results = rollout.tick(T0 + timedelta(hours=2), few, GOOD)
    assert rollout.state is State.RUNNING and rollout.stage_index == 0
    assert all(r.verdict is Verdict.PENDING for r in results if r.gate != "ocr_scanner_agreement")


def test_an_agreement_drop_rolls_every_device_back_and_says_why() -> None:
    rollout = Rollout(spec(), T0)
    rollout.tick(T0 + timedelta(seconds=600), GOOD, GOOD)  # canary -> 25%
    non_canaries_before = set(FLEET) - on_b(rollout, FLEET)
    bad = GOOD.model_copy(update={"agreements": 240})  # 80 % against A's 97 %
    rollout.tick(T0 + timedelta(seconds=700), bad, GOOD)
    assert rollout.state is State.ROLLED_BACK
    assert on_b(rollout, FLEET) == set()
    assert all(rollout.assignment(d) == Assignment("1.2.0") for d in non_canaries_before)
    last = rollout.audit[-1]
    assert last.action == "rollback" and last.actor == "system"
    assert "ocr_scanner_agreement failed" in last.reason
    assert last.figures["candidate"]["agreements"] == 240
    rollout.tick(T0 + timedelta(hours=5), GOOD, GOOD)  # final: nothing moves B back in
    assert on_b(rollout, FLEET) == set()


@pytest.mark.parametrize(
    ("change", "gate"),
    [
        ({"errors": 40}, "error_rate"),
        ({"latency_p95_ms": 90.0}, "latency_p95_ms"),
        ({"mean_confidence": 0.80}, "mean_confidence"),
        ({"review_or_unreadable": 80}, "review_share"),
        ({"defects": 90}, "defect_rate_drift"),
        ({"agreements": 250}, "ocr_scanner_agreement"),
    ],
)
def test_each_gate_fails_on_its_own_figure(change: dict[str, float], gate: str) -> None:
    results = evaluate(GOOD.model_copy(update=change), GOOD, GateThresholds())
    failed = [r.gate for r in results if r.verdict is Verdict.FAILED]
    assert failed == [gate]


def drift(defects: int, limits: GateThresholds) -> Verdict:
    results = evaluate(GOOD.model_copy(update={"defects": defects}), GOOD, limits)
    return next(r.verdict for r in results if r.gate == "defect_rate_drift")


def test_defect_rate_allowance_widens_only_the_upper_side() -> None:
    # A: 25/500 = 5 % defects. Usual bound: +-5 points either way.
    usual = GateThresholds()
    assert drift(49, usual) is Verdict.PASSED  # 9.8 %
    assert drift(51, usual) is Verdict.FAILED  # 10.2 %
    assert drift(0, usual) is Verdict.PASSED  # 0 %: -5 points, on the bound
    # a retrained model that catches more damage: +20 points allowed, a fall still only -5
    wide = GateThresholds(max_defect_rate_increase=0.20)
    assert drift(120, wide) is Verdict.PASSED  # 24 %
    assert drift(130, wide) is Verdict.FAILED  # 26 %
    assert drift(0, wide) is Verdict.PASSED
    fewer = GOOD.model_copy(update={"defects": 100})
    low = fewer.model_copy(update={"defects": 70})  # 14 % against A's 20 %: -6 points
    result = next(r for r in evaluate(low, fewer, wide) if r.gate == "defect_rate_drift")
    assert result.verdict is Verdict.FAILED
    assert result.limit == pytest.approx(0.15)  # the bound on the side it moved to


def test_operator_approval_pause_resume_and_abort_are_audited() -> None:
    rollout = Rollout(spec(auto_promote=False), T0)
    rollout.tick(T0 + timedelta(seconds=600), GOOD, GOOD)
    assert rollout.state is State.WAITING and rollout.stage_index == 0
    rollout.promote(T0 + timedelta(seconds=601), "alice")
    assert (rollout.state, rollout.stage_index) == (State.RUNNING, 1)
    rollout.pause(T0 + timedelta(seconds=602), "alice")
    rollout.tick(T0 + timedelta(hours=3), GOOD, GOOD)
    assert rollout.state is State.PAUSED and rollout.stage_index == 1
    rollout.resume(T0 + timedelta(hours=3), "bob")
    rollout.abort(T0 + timedelta(hours=3, seconds=1), "bob", "wrong artwork on line 2")
    assert rollout.state is State.ABORTED and on_b(rollout, FLEET) == set()
    with pytest.raises(ValueError, match="cannot resume"):
        rollout.resume(T0 + timedelta(hours=4), "bob")
    actors = [(e.actor, e.action) for e in rollout.audit]
    assert ("alice", "promote") in actors and ("bob", "abort") in actors
    assert ("system", "await_operator") in actors


def test_a_device_that_rolled_back_on_its_own_is_never_pushed_b_again() -> None:
    rollout = Rollout(spec(), T0)
    canary = sorted(on_b(rollout, FLEET))[0]
    rollout.device_rolled_back(T0 + timedelta(seconds=30), canary, "crash loop after switch")
    assert rollout.assignment(canary).run == "1.2.0"
    now = T0
    for _ in range(3):
        now += timedelta(seconds=600)
        rollout.tick(now, GOOD, GOOD)
    assert rollout.state is State.COMPLETED
    assert rollout.assignment(canary).run == "1.2.0"
    assert rollout.audit[1].actor == f"device:{canary}"


def test_shadow_mode_runs_a_and_shadows_b_on_canaries_only() -> None:
    rollout = Rollout(spec(shadow=True), T0)
    canary = sorted(on_b(rollout, FLEET) | {d for d in FLEET if rollout.in_stage(d)})[0]
    assert rollout.assignment(canary) == Assignment("1.2.0", shadow="1.3.0")
    others = [d for d in FLEET if not rollout.in_stage(d)]
    assert all(rollout.assignment(d) == Assignment("1.2.0") for d in others)


def test_specs_are_validated() -> None:
    with pytest.raises(ValidationError, match="100 percent"):
        spec(stages=[Stage(name="canary", percent=5)])
    with pytest.raises(ValidationError, match="must not decrease"):
        spec(stages=[Stage(name="a", percent=50), Stage(name="b", percent=10)])
    with pytest.raises(ValidationError, match="the same"):
        spec(to_version="1.2.0")
