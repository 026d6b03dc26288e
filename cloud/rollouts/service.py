"""Rollouts in the database: releases, device reports, directives, the evaluator, operator actions.

The decisions themselves are :mod:`cloud.rollouts.plan` (state machine, stable waves) and
:mod:`cloud.rollouts.gates` (health gates); this module loads a rollout from its row, lets the
plan decide, and stores the outcome with every decision in ``rollout_decisions`` and the audit
log, in the same transaction. Automatic decisions are made by the actor ``rollout-evaluator``;
a device's own rollback by ``device:<id>``; an operator's by ``person:<name>``.

What a device should run is a function of the stored state only (see :func:`directive`), so any
worker answers the same, a device that was offline converges when it returns, and a version
that was rolled back meanwhile is never handed out.

Gate windows: the candidate (version B) is judged on everything B reported since the current
stage began; the baseline is version A over the same time. When fewer than the gate's minimum
observations of A were reported in that time (the last wave leaves few or no devices on A),
the baseline widens to A's figures since the rollout started, so a 100 % stage can be judged.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db.models import (
    Device,
    OtaDeviceModel,
    OtaDeviceState,
    OtaFigures,
    OtaRelease,
    RolloutDecision,
    RolloutRefusal,
    RolloutRow,
    utcnow,
)
from cloud.db.session import upsert_insert
from cloud.rollouts.gates import GateResult
from cloud.rollouts.plan import FINAL, AuditEntry, Rollout, RolloutSpec, State
from cloud.services.audit import audit
from edge.contracts.errors import DockgateError, ErrorCode
from edge.contracts.ota import Assignment, ModelFigures, OtaDirective, OtaReport

EVALUATOR = "rollout-evaluator"
ACTIONS = ("pause", "resume", "promote", "abort")
_COUNT_MAX = 10**9


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# -- releases --------------------------------------------------------------------------------
def sync_releases(s: Session, repo_dir: Path) -> int:
    """Record every signed release of the TUF repository at ``repo_dir``; returns how many new.

    ``dockgate ota release`` signs into the repository the cloud serves; this reads its current
    targets metadata (name, version, sha256, length and the custom metadata: ONNX signature,
    minimum Dockgate version, model-card metrics). A missing repository is zero releases.
    """
    path = repo_dir / "metadata" / "targets.json"
    if not path.is_file():
        return 0
    from tuf.api.metadata import Metadata, Targets

    targets: Targets = Metadata[Targets].from_file(str(path)).signed
    known = set(s.execute(select(OtaRelease.target)).scalars())
    rows = []
    for target_path, info in targets.targets.items():
        custom = dict(info.custom or {})
        if target_path in known or "version" not in custom or "name" not in custom:
            continue  # already recorded, or an active.json pointer rather than a model file
        rows.append(
            {
                "target": target_path,
                "name": str(custom["name"]),
                "version": str(custom["version"]),
                "sha256": info.hashes["sha256"],
                "length": info.length,
                "custom": custom,
                "registered_at": utcnow(),
            }
        )
    if not rows:
        return 0
    # The evaluator and a person creating a rollout may both find a new release at once. On
    # PostgreSQL both transactions then insert it and the second one's unique key failed with a
    # 500 (a CI run's POST /v1/rollouts); whoever comes second now just finds it recorded.
    stmt = upsert_insert(s, OtaRelease).values(rows).on_conflict_do_nothing()
    return len(s.execute(stmt.returning(OtaRelease.target)).all())


@dataclass(frozen=True)
class RepoView:
    """What the repository's current signed targets metadata says (parsed once per version)."""

    releases: dict[tuple[str, str], tuple[str, str, int]]  # (name, version) -> target, sha, len
    active: dict[str, str]  # model name -> version its signed active.json points at


def repo_view(repo_dir: Path) -> RepoView:
    """The repository's releases and active pointers (fleet default), cached per file version."""
    path = repo_dir / "metadata" / "targets.json"
    try:
        st = path.stat()
    except OSError:
        return RepoView({}, {})
    return _parse_targets(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _parse_targets(path: str, _mtime_ns: int, _size: int) -> RepoView:
    from tuf.api.metadata import Metadata, Targets

    targets: Targets = Metadata[Targets].from_file(path).signed
    releases: dict[tuple[str, str], tuple[str, str, int]] = {}
    active: dict[str, str] = {}
    for target_path, info in targets.targets.items():
        custom = info.custom or {}
        pointer = custom.get("active")
        if isinstance(pointer, dict) and "name" in pointer and "version" in pointer:
            active[str(pointer["name"])] = str(pointer["version"])
        elif "name" in custom and "version" in custom:
            key = (str(custom["name"]), str(custom["version"]))
            releases[key] = (target_path, info.hashes["sha256"], info.length)
    return RepoView(releases, active)


def _release(s: Session, name: str, version: str) -> OtaRelease | None:
    return s.execute(
        select(OtaRelease).where(OtaRelease.name == name, OtaRelease.version == version)
    ).scalar_one_or_none()


# -- rollouts: loading and storing -----------------------------------------------------------
def load_plan(s: Session, row: RolloutRow, only_device: str | None = None) -> Rollout:
    """The plan of a stored rollout; ``only_device``: load that device's refusal only (enough
    to answer its directive without reading every refusal of a large fleet)."""
    q = select(RolloutRefusal.device_id).where(RolloutRefusal.rollout_id == row.id)
    if only_device is not None:
        q = q.where(RolloutRefusal.device_id == only_device)
    refused = set(s.execute(q).scalars().all())
    started = _aware(row.start_at)
    stage_started = _aware(row.stage_started_at) if row.stage_started_at else started
    return Rollout(
        spec=RolloutSpec.model_validate(row.spec),
        started_at=started,
        stage_index=row.stage_index,
        stage_started_at=stage_started,
        state=State(row.state),
        refused_by=refused,
        restored=True,
    )


def _record(s: Session, row: RolloutRow, entries: Iterable[AuditEntry]) -> None:
    for e in entries:
        actor = EVALUATOR if e.actor == "system" else e.actor
        s.add(
            RolloutDecision(
                rollout_id=row.id,
                at=e.at,
                actor=actor,
                action=e.action,
                stage=e.stage,
                reason=e.reason[:2000],
                figures=e.figures,
            )
        )
        code = ErrorCode.OTA_DEVICE_ROLLBACK if e.action == "device_rollback" else None
        audit(
            s,
            actor,
            f"rollout.{e.action}",
            code,
            rollout=row.id,
            model=row.model,
            stage=e.stage,
            reason=e.reason[:2000],
            figures=e.figures,
        )
        if e.action not in ("device_rollback",):
            row.reason = e.reason[:2000]


def _store(s: Session, row: RolloutRow, ro: Rollout, before: int) -> None:
    row.state = ro.state.value
    row.stage_index = ro.stage_index
    row.stage_started_at = ro.stage_started_at
    if ro.state in FINAL and row.ended_at is None:
        row.ended_at = ro.audit[-1].at if ro.audit else utcnow()
    _record(s, row, ro.audit[before:])


def create_rollout(
    s: Session, actor: str, spec: RolloutSpec, start_at: dt.datetime | None, repo_dir: Path
) -> RolloutRow:
    """Store a new rollout (``pending`` until ``start_at``, default now; the evaluator starts it).

    Both versions must be signed releases, and no other rollout of the model may be under way.
    """
    sync_releases(s, repo_dir)
    for version in (spec.from_version, spec.to_version):
        if _release(s, spec.model, version) is None:
            raise DockgateError(
                ErrorCode.NOT_FOUND, f"{spec.model} {version} is not a signed release"
            )
    if s.get(RolloutRow, spec.id) is not None:
        raise DockgateError(ErrorCode.ROLLOUT_CONFLICT, f"rollout {spec.id} already exists")
    busy = s.execute(
        select(RolloutRow.id).where(
            RolloutRow.model == spec.model, RolloutRow.state.not_in([f.value for f in FINAL])
        )
    ).first()
    if busy is not None:
        raise DockgateError(
            ErrorCode.ROLLOUT_CONFLICT, f"rollout {busy[0]} of {spec.model} is still under way"
        )
    now = utcnow()
    row = RolloutRow(
        id=spec.id,
        model=spec.model,
        from_version=spec.from_version,
        to_version=spec.to_version,
        spec=spec.model_dump(mode="json"),
        state=State.PENDING.value,
        stage_index=0,
        created_at=now,
        created_by=actor,
        start_at=start_at or now,
        reason="",
    )
    s.add(row)
    s.flush()
    s.add(
        RolloutDecision(
            rollout_id=row.id,
            at=now,
            actor=actor,
            action="create",
            stage=spec.stages[0].name,
            reason=f"{spec.model} {spec.from_version} -> {spec.to_version}",
            figures={},
        )
    )
    audit(s, actor, "rollout.create", None, rollout=row.id, spec=row.spec)
    return row


def operator_action(
    s: Session, rollout_id: str, action: str, actor: str, reason: str = ""
) -> RolloutRow:
    """``pause``, ``resume``, ``promote`` or ``abort`` by a person (the caller checks the role).

    The decision records the figures the operator saw (the current gate window).
    """
    if action not in ACTIONS:
        raise DockgateError(ErrorCode.NOT_FOUND, f"no rollout action {action!r}")
    row = s.get(RolloutRow, rollout_id, with_for_update=True)
    if row is None:
        raise DockgateError(ErrorCode.NOT_FOUND, f"no rollout {rollout_id}")
    now = utcnow()
    if row.state == State.PENDING.value:
        if action != "abort":
            raise DockgateError(ErrorCode.ROLLOUT_CONFLICT, f"rollout {row.id} has not started")
        row.state, row.ended_at, row.reason = State.ABORTED.value, now, reason or "operator"
        _record(
            s,
            row,
            [AuditEntry(now, actor, "abort", row.spec["stages"][0]["name"], row.reason)],
        )
        return row
    ro = load_plan(s, row)
    before = len(ro.audit)
    try:
        if action == "abort":
            ro.abort(now, actor, reason or "operator")
        else:
            getattr(ro, action)(now, actor)
    except ValueError as exc:
        raise DockgateError(ErrorCode.ROLLOUT_CONFLICT, str(exc)) from None
    cand, base = window_figures(s, row, ro, now)
    figures = {"candidate": cand.to_dict(), "baseline": base.to_dict()}
    entries = [
        AuditEntry(e.at, e.actor, e.action, e.stage, reason or e.reason, e.figures or figures)
        for e in ro.audit[before:]
    ]
    ro.audit[before:] = entries
    _store(s, row, ro, before)
    return row


# -- figures ---------------------------------------------------------------------------------
def aggregate(
    s: Session,
    model: str,
    version: str,
    since: dt.datetime,
    until: dt.datetime | None = None,
) -> ModelFigures:
    """Sum of every device's figures for ``model`` ``version`` reported in [since, until)."""
    f = OtaFigures
    q = select(
        func.coalesce(func.sum(f.observations), 0),
        func.coalesce(func.sum(f.errors), 0),
        func.coalesce(func.sum(f.latency_p95_ms * f.observations), 0.0),
        func.coalesce(func.sum(f.mean_confidence * f.observations), 0.0),
        func.coalesce(func.sum(f.review_or_unreadable), 0),
        func.coalesce(func.sum(f.defects), 0),
        func.coalesce(func.sum(f.agreement_pairs), 0),
        func.coalesce(func.sum(f.agreements), 0),
        func.coalesce(func.sum(f.disagreements), 0),
    ).where(f.model == model, f.version == version, f.at >= since)
    if until is not None:
        q = q.where(f.at < until)
    row = s.execute(q).one()
    return _figures(*row)


def _figures(
    obs: Any,
    errors: Any,
    lat_w: Any,
    conf_w: Any,
    review: Any,
    defects: Any,
    pairs: Any,
    agreements: Any,
    disagreements: Any,
) -> ModelFigures:
    n = int(obs)

    def c(v: Any) -> int:
        return min(int(v), _COUNT_MAX)

    return ModelFigures(
        observations=c(n),
        errors=c(errors),
        latency_p95_ms=min(float(lat_w) / n, 600_000.0) if n else 0.0,
        mean_confidence=min(max(float(conf_w) / n, 0.0), 1.0) if n else 0.0,
        review_or_unreadable=c(review),
        defects=c(defects),
        agreement_pairs=c(pairs),
        agreements=c(agreements),
        disagreements=c(disagreements),
    )


def window_figures(
    s: Session, row: RolloutRow, ro: Rollout, now: dt.datetime
) -> tuple[ModelFigures, ModelFigures]:
    """(candidate B, baseline A) for the current stage's gate window (see the module doc)."""
    since = ro.stage_started_at or ro.started_at
    cand = aggregate(s, row.model, row.to_version, since)
    base = aggregate(s, row.model, row.from_version, since)
    if base.observations < ro.spec.gates.min_observations:
        base = aggregate(s, row.model, row.from_version, ro.started_at)
    return cand, base


@dataclass(frozen=True)
class Point:
    """One time bucket of one version's figures (for the console's charts)."""

    at: dt.datetime
    version: str
    figures: ModelFigures


def series(
    s: Session, model: str, versions: list[str], since: dt.datetime, until: dt.datetime, n: int
) -> list[Point]:
    """Per-version figures in ``n`` equal time buckets between ``since`` and ``until``."""
    span = max((until - since).total_seconds(), 1.0) / n
    f = OtaFigures
    rows = s.execute(
        select(
            f.at,
            f.version,
            f.observations,
            f.errors,
            f.latency_p95_ms,
            f.mean_confidence,
            f.review_or_unreadable,
            f.defects,
            f.agreement_pairs,
            f.agreements,
            f.disagreements,
        ).where(f.model == model, f.version.in_(versions), f.at >= since, f.at < until)
    ).all()
    sums: dict[tuple[int, str], list[float]] = {}
    for at, version, obs, err, lat, conf, rev, dfc, pairs, agr, dis in rows:
        i = min(int((_aware(at) - since).total_seconds() / span), n - 1)
        acc = sums.setdefault((i, version), [0.0] * 9)
        for k, v in enumerate((obs, err, lat * obs, conf * obs, rev, dfc, pairs, agr, dis)):
            acc[k] += v
    return [
        Point(since + dt.timedelta(seconds=span * (i + 0.5)), version, _figures(*acc))
        for (i, version), acc in sorted(sums.items())
    ]


# -- device reports and directives -----------------------------------------------------------
_SUMMED = (
    "observations",
    "errors",
    "review_or_unreadable",
    "defects",
    "agreement_pairs",
    "agreements",
    "disagreements",
)


def _add_figures(
    s: Session,
    device_id: str,
    model: str,
    version: str,
    fig: ModelFigures,
    now: dt.datetime,
    window_s: int,
) -> None:
    """Add one report's figures to the device's open window (or open a new one).

    The window's ``at`` moves to the latest report, so a gate counting rows ``at >= stage
    start`` never misses a report made after the stage began (it may count up to one window of
    the same version's figures from just before: same version, real behaviour).
    """
    f = OtaFigures
    row = s.execute(
        select(f)
        .where(f.device_id == device_id, f.model == model, f.version == version)
        .where(f.at >= now - dt.timedelta(seconds=window_s))
        .order_by(f.at.desc())
        .limit(1)
    ).scalar_one_or_none()
    opened = row.opened_at if row is not None else None
    if row is None or opened is None or now - _aware(opened) >= dt.timedelta(seconds=window_s):
        s.add(
            OtaFigures(
                at=now,
                opened_at=now,
                device_id=device_id,
                model=model,
                version=version,
                **fig.model_dump(),
            )
        )
        return
    n_old, n_new = row.observations, fig.observations
    total = n_old + n_new
    if total:
        row.latency_p95_ms = (row.latency_p95_ms * n_old + fig.latency_p95_ms * n_new) / total
        row.mean_confidence = (row.mean_confidence * n_old + fig.mean_confidence * n_new) / total
    for key in _SUMMED:
        setattr(row, key, getattr(row, key) + getattr(fig, key))
    row.at = now


def apply_report(
    s: Session, device_id: str, report: OtaReport, now: dt.datetime, window_s: int = 60
) -> None:
    """Store what the device runs, its figures (once per ``report_seq``, added up per window of
    ``window_s`` seconds per device and version) and its refusals."""
    if report.device_id != device_id:
        raise DockgateError(ErrorCode.DEVICE_MISMATCH, "report of another device")
    state = s.get(OtaDeviceState, device_id, with_for_update=True)
    if state is None:
        state = OtaDeviceState(device_id=device_id, report_seq=None, reported_at=now)
        s.add(state)
    duplicate = (
        report.report_seq is not None
        and state.report_seq is not None
        and report.report_seq <= state.report_seq
    )
    state.reported_at = now
    if report.report_seq is not None and not duplicate:
        state.report_seq = report.report_seq
    active = {
        r.model: r
        for r in s.execute(
            select(RolloutRow).where(RolloutRow.state.not_in([f.value for f in FINAL]))
        ).scalars()
    }
    for m in report.models:
        row = s.get(OtaDeviceModel, (device_id, m.name))
        if row is None:
            row = OtaDeviceModel(device_id=device_id, model=m.name)
            s.add(row)
        row.running, row.previous, row.on_probation = m.running, m.previous, m.on_probation
        row.last_code = m.last_code.value if m.last_code else None
        row.refused = {r.version: r.reason for r in m.refused}
        row.reported_at = now
        if not duplicate:
            for version, fig in m.figures.items():
                if fig.observations or fig.errors or fig.disagreements:
                    _add_figures(s, device_id, m.name, version, fig, now, window_s)
        rollout = active.get(m.name)
        if rollout is None or rollout.state == State.PENDING.value:
            continue
        refused_b = [r for r in m.refused if r.version == rollout.to_version]
        if refused_b and s.get(RolloutRefusal, (rollout.id, device_id)) is None:
            reason = f"{refused_b[0].reason} ({m.last_code or 'no code'})"
            s.add(RolloutRefusal(rollout_id=rollout.id, device_id=device_id, at=now, reason=reason))
            stage = rollout.spec["stages"][rollout.stage_index]["name"]
            entry = AuditEntry(now, f"device:{device_id}", "device_rollback", stage, reason)
            _record(s, rollout, [entry])


def _assignments(s: Session, device_id: str, repo_dir: Path) -> tuple[list[Assignment], bool]:
    """The device's assignments, and whether it runs or shadows a version under judgement."""
    view = repo_view(repo_dir)
    # per model, the newest rollout that started (a pending one, or one aborted before it
    # started, changed nothing: the one before it, or the fleet default, still holds)
    started = RolloutRow.stage_started_at.is_not(None)
    newest = (
        select(RolloutRow.model, func.max(RolloutRow.created_at).label("created"))
        .where(started)
        .group_by(RolloutRow.model)
        .subquery()
    )
    latest: dict[str, RolloutRow] = {
        row.model: row
        for row in s.execute(
            select(RolloutRow)
            .join(
                newest,
                and_(RolloutRow.model == newest.c.model, RolloutRow.created_at == newest.c.created),
            )
            .where(started)
        ).scalars()
    }
    wanted: list[tuple[str, str, str | None, bool]] = []
    judged = False
    for model, row in latest.items():
        if row.state in (State.ROLLED_BACK.value, State.ABORTED.value):
            wanted.append((model, row.from_version, row.id, False))
            continue
        ro = load_plan(s, row, device_id)  # completed: B, except for devices that refused it
        a = ro.assignment(device_id)
        if ro.state not in FINAL and (a.shadow or a.run == row.to_version):
            judged = True
        wanted.append((model, a.run, row.id, False))
        if a.shadow:
            wanted.append((model, a.shadow, row.id, True))
    for model, version in view.active.items():
        if model not in latest:
            wanted.append((model, version, None, False))
    out = []
    for model, version, rollout_id, shadow in wanted:
        rel = view.releases.get((model, version))
        if rel is None:
            continue  # not signed (any more): nothing a device could verify
        target, sha256, length = rel
        out.append(
            Assignment(
                name=model,
                version=version,
                target=target,
                sha256=sha256,
                length=length,
                rollout_id=rollout_id,
                shadow=shadow,
            )
        )
    return sorted(out, key=lambda a: (a.name, a.shadow)), judged


def etag_of(assignments: list[Assignment]) -> str:
    data = json.dumps([a.model_dump(mode="json") for a in assignments], sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:32]


def directive(
    s: Session,
    device_id: str,
    repo_dir: Path,
    poll_after_s: float,
    active_poll_s: float | None = None,
) -> OtaDirective:
    """What ``device_id`` should run now, per model name, with its ETag. A device that runs or
    shadows a version still under judgement is asked back after ``active_poll_s`` (so a
    rollback reaches it quickly); the others after ``poll_after_s``."""
    assignments, judged = _assignments(s, device_id, repo_dir)
    poll = min(poll_after_s, active_poll_s) if judged and active_poll_s else poll_after_s
    return OtaDirective(
        device_id=device_id,
        assignments=assignments,
        poll_after_s=poll,
        etag=etag_of(assignments),
    )


# -- the evaluator ---------------------------------------------------------------------------
def evaluate_rollout(s: Session, rollout_id: str, now: dt.datetime) -> list[GateResult]:
    """One evaluation of one rollout: start it when due, apply the gates, store the outcome."""
    row = s.get(RolloutRow, rollout_id, with_for_update=True)
    if row is None or row.state in {f.value for f in FINAL}:
        return []
    if row.state == State.PENDING.value:
        if _aware(row.start_at) > now:
            return []
        row.start_at = now
        row.state, row.stage_index, row.stage_started_at = State.RUNNING.value, 0, now
        spec = RolloutSpec.model_validate(row.spec)
        _record(
            s,
            row,
            [AuditEntry(now, "system", "start", spec.stages[0].name, "start time reached")],
        )
    ro = load_plan(s, row)
    before = len(ro.audit)
    cand, base = window_figures(s, row, ro, now)
    results = ro.tick(now, cand, base)
    if results:
        figures = {
            "candidate": cand.to_dict(),
            "baseline": base.to_dict(),
            "gates": [r.describe() for r in results],
        }
        ro.audit[before:] = [
            AuditEntry(e.at, e.actor, e.action, e.stage, e.reason, figures)
            for e in ro.audit[before:]
        ]
    _store(s, row, ro, before)
    return results


def _decision_due(s: Session, rollout_id: str, now: dt.datetime) -> bool:
    """Whether evaluating now would change anything (read-only: the gates on a copy)."""
    row = s.get(RolloutRow, rollout_id)
    if row is None or row.state in {f.value for f in FINAL}:
        return False
    if row.state == State.PENDING.value:
        return _aware(row.start_at) <= now
    ro = load_plan(s, row)
    before = (ro.state, ro.stage_index, len(ro.audit))
    cand, base = window_figures(s, row, ro, now)
    ro.tick(now, cand, base)
    return (ro.state, ro.stage_index, len(ro.audit)) != before


def evaluate_all(
    sessions: sessionmaker[Session],
    repo_dir: Path,
    now: dt.datetime,
    readers: sessionmaker[Session] | None = None,
) -> int:
    """Evaluate every unfinished rollout; returns how many decided something.

    The gates are computed on a read-only session first; only a rollout with a decision due
    takes the write lock (evaluated again under it, each in its own transaction), so a quiet
    evaluator never competes with device heartbeats for SQLite's single writer.
    """
    readers = readers or sessions
    view = repo_view(repo_dir)
    with readers() as s:
        known = set(s.execute(select(OtaRelease.target)).scalars())
        ids = list(
            s.execute(
                select(RolloutRow.id).where(RolloutRow.state.not_in([f.value for f in FINAL]))
            ).scalars()
        )
        due = [rid for rid in ids if _decision_due(s, rid, now)]
    if any(target not in known for target, _sha, _len in view.releases.values()):
        with sessions.begin() as s:
            sync_releases(s, repo_dir)
    for rollout_id in due:
        with sessions.begin() as s:
            evaluate_rollout(s, rollout_id, now)
    return len(due)


def prune_figures(s: Session, older_than: dt.timedelta) -> int:
    """Forget per-window figures older than ``older_than`` (the decisions keep theirs)."""
    cutoff = utcnow() - older_than
    result = s.execute(
        delete(OtaFigures).where(OtaFigures.at < cutoff),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def fleet(s: Session) -> list[tuple[Device, dict[str, OtaDeviceModel], dt.datetime | None]]:
    """Every device with what it last reported per model name and when it was last seen."""
    models: dict[str, dict[str, OtaDeviceModel]] = {}
    for m in s.execute(select(OtaDeviceModel)).scalars():
        models.setdefault(m.device_id, {})[m.model] = m
    reported = {
        st.device_id: _aware(st.reported_at) for st in s.execute(select(OtaDeviceState)).scalars()
    }
    out = []
    for dev in s.execute(select(Device).order_by(Device.site, Device.id)).scalars():
        seen = [t for t in (dev.last_seen_at, reported.get(dev.id)) if t is not None]
        out.append((dev, models.get(dev.id, {}), max(_aware(t) for t in seen) if seen else None))
    return out
