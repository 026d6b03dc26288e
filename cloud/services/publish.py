"""The gate before publishing a trained candidate, the signed release, and its canary rollout.

**Production** is what the candidate would replace: the version of the model that the release
repository's signed ``active.json`` points at (the fleet default), read from the repository's
own target file; when the repository has none, the model shipped in ``models/`` (the manifest).

**Gate.** Candidate and production are scored by the same code on the same crops or frames:
the exported dataset's ``regression`` and ``val`` splits of the job's kind
(``edge.vision.learning.evaluate``). Codes: greedy line exact match, then character error rate,
through the CRNN runtime (PP-OCR's figures on the same crops are recorded beside them, as the
reader's other recogniser). Defects: recall of damaged frames minus the false-freeze rate of
good ones, each model at its own freeze threshold, then 5-class accuracy. A split without
members of the kind is not judged. The candidate is **rejected** when it is worse on any judged
split, or better on none (ties keep production); the reason and every figure are stored on the
job and audited with ``CANDIDATE_REJECTED``. A rejected candidate is never signed.

**Publish.** A better candidate gets the gate's figures appended to its model card (they become
the release's metrics), is signed into the TUF repository at ``ota_dir`` (``ota.repo``: its
online keys must be there; ``dockgate ota keys init``) without moving the fleet default, and
then a canary rollout from the production version is created at once or after an admin's
approval (``auto_rollout`` per model). With no signed production version there is nothing to
canary against: the job ends ``released`` and a person starts the first rollout.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud.db.models import TrainingJob, utcnow
from cloud.deps import Services
from cloud.rollouts import service
from cloud.rollouts.gates import GateThresholds
from cloud.rollouts.plan import RolloutSpec, Stage
from cloud.services.audit import audit
from cloud.services.training import get, learning
from edge.contracts.errors import DockgateError, ErrorCode

SPLITS = ("regression", "val")
FOLDER = {"codes": "codes", "defect": "defects"}


# -- production ----------------------------------------------------------------------------------
def production(repo_dir: Path, name: str) -> tuple[str, Path] | None:
    """(version, file) of the repository's active ``name``, or None when it has none."""
    view = service.repo_view(repo_dir)
    version = view.active.get(name)
    if version is None or (name, version) not in view.releases:
        return None
    target, sha, _length = view.releases[(name, version)]
    rel = Path(target)
    path = repo_dir / "targets" / rel.parent / f"{sha}.{rel.name}"
    return (version, path) if path.is_file() else None


# -- the gate ------------------------------------------------------------------------------------
def key(kind: str, fig: dict[str, Any]) -> tuple[float, float]:
    """Bigger is better; compared lexicographically."""
    if kind == "codes":
        return (fig.get("exact") or 0.0, -(fig.get("cer") or 0.0))
    youden = (fig.get("recall") or 0.0) - (fig.get("false_freeze") or 0.0)
    return (youden, fig.get("accuracy") or 0.0)


def compare(kind: str, cand: dict[str, Any], prod: dict[str, Any]) -> int:
    """1 better, 0 same, -1 worse (figures rounded to 6 places: no float noise decides)."""
    a = tuple(round(v, 6) for v in key(kind, cand))
    b = tuple(round(v, 6) for v in key(kind, prod))
    return (a > b) - (a < b)


def decide(kind: str, figures: dict[str, dict[str, Any]]) -> tuple[bool, str]:
    """(publish?, reason) from ``{split: {"candidate": fig, "production": fig}}``."""
    judged = {sp: f for sp, f in figures.items() if f["candidate"].get("count")}
    if not judged:
        return False, f"no {kind} members in the regression or validation set to judge on"
    verdicts = {sp: compare(kind, f["candidate"], f["production"]) for sp, f in judged.items()}
    worse = [sp for sp, v in verdicts.items() if v < 0]
    if worse:
        return False, f"worse than production on the {' and '.join(worse)} set: " + _show(
            kind, judged[worse[0]]
        )
    if not any(v > 0 for v in verdicts.values()):
        return False, "not better than production on any judged set: " + _show(
            kind, next(iter(judged.values()))
        )
    better = [sp for sp, v in verdicts.items() if v > 0]
    return True, f"better than production on the {' and '.join(better)} set: " + _show(
        kind, judged[better[0]]
    )


def _show(kind: str, f: dict[str, Any]) -> str:
    names = ("exact", "cer") if kind == "codes" else ("recall", "false_freeze", "accuracy")
    c, p = f["candidate"], f["production"]
    return ", ".join(f"{n} {c.get(n)} vs {p.get(n)}" for n in names)


def evaluate(svc: Services, kind: str, onnx: Path, data: Path) -> dict[str, Any]:
    """Candidate, production (and PP-OCR for codes) on each split of the exported data."""
    api = learning()
    threads = svc.config.training_threads
    prod = production(svc.config.ota_dir, api.MODELS[kind])
    prod_file = prod[1] if prod else None
    out: dict[str, Any] = {"production_source": "release" if prod else "shipped", "splits": {}}
    for split in SPLITS:
        folder = data / FOLDER[kind] / split
        row = {
            "candidate": api.evaluate(kind, onnx, folder, threads=threads),
            "production": api.evaluate(kind, prod_file, folder, threads=threads),
        }
        if kind == "codes" and row["candidate"]["count"]:
            row["ppocr"] = api.evaluate(kind, None, folder, reader="ppocr", threads=threads)
        out["splits"][split] = row
    out["production_version"] = prod[0] if prod else out["splits"]["val"]["production"]["version"]
    return out


def gate_and_publish(
    svc: Services, job_id: int, cand: Any, data: Path, progress: Callable[[str, int, int], None]
) -> str:
    """Judge the job's candidate; reject it, or sign it and start (or await) its rollout.
    Returns the job's final status."""
    with svc.sessions() as s:
        job = get(s, job_id)
        kind, model, actor = job.kind, job.model, job.created_by
    progress("gate", 0, 1)
    figures = evaluate(svc, kind, cand.onnx, data)
    ok, reason = decide(kind, figures["splits"])
    if not ok:
        with svc.sessions.begin() as s:
            job = get(s, job_id)
            job.evaluation, job.status, job.stage = figures, "rejected", "rejected"
            job.reason, job.finished_at = reason, utcnow()
            audit(
                s,
                "training-gate",
                "training.reject",
                ErrorCode.CANDIDATE_REJECTED,
                job=job_id,
                model=model,
                candidate=cand.version,
                reason=reason,
            )
        return "rejected"
    progress("release", 0, 1)
    _append_gate(cand.onnx.parent / "MODEL_CARD.md", figures)
    release(svc.config.ota_dir, cand.onnx, model, cand.version)
    with svc.sessions.begin() as s:
        job = get(s, job_id)
        job.evaluation, job.version, job.reason = figures, cand.version, reason
        audit(
            s,
            "training-gate",
            "training.release",
            None,
            job=job_id,
            model=model,
            version=cand.version,
            reason=reason,
        )
        if not svc.config.auto_rollout.get(model, False):
            has_base = production(svc.config.ota_dir, model) is not None
            job.status = job.stage = "awaiting_approval" if has_base else "released"
        else:
            start_rollout(svc, s, job, actor)
        job.finished_at = utcnow()
        return job.status


def release(repo_dir: Path, onnx: Path, name: str, version: str) -> str:
    """Sign ``onnx`` into the repository as ``name`` ``version`` (not activated); returns its
    target path. One publisher at a time (a file lock): ``ota.repo`` is not thread-safe."""
    from ota.release import describe_model, sha256_file
    from ota.repo import Repository

    repo = Repository(repo_dir)
    if not repo.key_path("targets").is_file():
        raise DockgateError(
            ErrorCode.CONFIG_INVALID,
            f"no release repository with online keys at {repo_dir}: run 'dockgate ota keys init'",
        )
    try:
        min_dockgate = importlib.metadata.version("dockgate")
    except importlib.metadata.PackageNotFoundError:
        min_dockgate = "0.1.0"
    info = describe_model(onnx, name, version, sha256=sha256_file(onnx), min_dockgate=min_dockgate)
    with (repo_dir / ".publish.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return repo.release(onnx, info, activate=False)


def start_rollout(svc: Services, s: Any, job: TrainingJob, actor: str) -> str | None:
    """The canary rollout production -> the job's version (in the caller's transaction); None
    and status ``released`` when there is no signed production version to start from."""
    repo = svc.config.ota_dir
    base = production(repo, job.model)
    if base is None or job.version is None:
        job.status = job.stage = "released"
        job.reason += f"; no signed production {job.model} to roll out from: start one by hand"
        return None
    cfg = svc.config
    spec = RolloutSpec(
        id=f"{job.model.replace('.', '-')}-{job.version}"[:63].lower(),
        model=job.model,
        from_version=base[0],
        to_version=job.version,
        stages=[
            Stage(
                name=name,
                percent=pct,
                min_soak_s=cfg.auto_rollout_soak_s,
                min_observations=cfg.auto_rollout_observations,
            )
            for name, pct in (("canary", 10.0), ("half", 50.0), ("all", 100.0))
        ],
        gates=thresholds(job.kind, job.evaluation),
    )
    row = service.create_rollout(s, actor, spec, None, repo)
    job.rollout_id, job.status, job.stage = row.id, "rolling_out", "rolling_out"
    return row.id


def thresholds(kind: str, evaluation: dict[str, Any]) -> GateThresholds:
    """The rollout gates for a candidate the gate found better.

    A defect candidate that catches more damage than production freezes more cartons in the
    field: its defect rate rises by up to the share of damaged cartons times its recall gain,
    plus its false-freeze change. The prevalence is unknown, so the upper drift bound grows by
    the whole gain measured on the judged splits (the largest), on top of the usual bound; a
    fall in the defect rate (the candidate missing damage) keeps the usual, symmetric bound.
    """
    base = GateThresholds()
    if kind != "defect":
        return base
    gain = 0.0
    for row in evaluation.get("splits", {}).values():
        cand, prod = row.get("candidate", {}), row.get("production", {})
        if not cand.get("count"):
            continue
        recall = (cand.get("recall") or 0.0) - (prod.get("recall") or 0.0)
        freeze = (cand.get("false_freeze") or 0.0) - (prod.get("false_freeze") or 0.0)
        gain = max(gain, max(recall, 0.0) + max(freeze, 0.0))
    if gain <= 0.0:
        return base
    up = min(1.0, base.max_defect_rate_drift + gain)
    return base.model_copy(update={"max_defect_rate_increase": round(up, 6)})


def approve(svc: Services, job_id: int, actor: str) -> TrainingJob:
    """An admin's click: start the rollout of a job ``awaiting_approval``."""
    with svc.sessions.begin() as s:
        job = s.get(TrainingJob, job_id, with_for_update=True)
        if job is None:
            raise DockgateError(ErrorCode.NOT_FOUND, f"no training job {job_id}")
        if job.status != "awaiting_approval":
            raise DockgateError(
                ErrorCode.ROLLOUT_CONFLICT, f"job {job_id} is {job.status}, not awaiting approval"
            )
        start_rollout(svc, s, job, actor)
        audit(s, actor, "training.approve", None, job=job_id, rollout=job.rollout_id)
        return job


def _append_gate(card: Path, figures: dict[str, Any]) -> None:
    """The gate's figures as two-column tables: ``ota.release.card_metrics`` puts them into
    the signed release's metrics (shown on the console's releases page)."""
    lines = ["", "## Gate against production", ""]
    for split, row in figures["splits"].items():
        for who, fig in row.items():
            values = {k: v for k, v in fig.items() if isinstance(v, int | float) and k != "count"}
            if not fig.get("count") or not values:
                continue
            lines += [f"{split} set, {who}:", "", "| metric | value |", "|---|---|"]
            lines += [f"| {k} | {v:.6g} |" for k, v in values.items()]
            lines.append("")
    with card.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
