"""Training jobs: retrain a model on a dataset snapshot, on a task queue, with progress.

A job is (kind ``codes`` | ``defect``, dataset id, trainer params). Running it:

1. **export** the dataset (:func:`cloud.services.datasets.export`, the documented folder format)
   into ``<jobs_dir>/<job>/data``;
2. **train** through the trainer's Python API (``edge.vision.learning.train``: the CRNN or the
   defect CNN, seeded, on ``training_threads`` threads) into ``<jobs_dir>/<job>/candidate``
   (the ONNX file and its ``MODEL_CARD.md``), writing ``stage`` and ``step``/``total`` into the
   job's row as it goes;
3. **gate and publish** (:mod:`cloud.services.publish`): judged against production on the
   dataset's regression and validation sets; rejected, or signed into the release repository
   with a canary rollout (now or after an admin's approval, per model: ``auto_rollout``).

Queues (``training_queue``), both existing task queues rather than a home-made one:

- ``inprocess`` (default, the demo): the standard library's ``ThreadPoolExecutor`` with one
  worker thread, in the cloud service (jobs started from the console or the API) or in the CLI
  process (``dockgate cloud train start`` runs the job in the foreground). Stopping the service
  stops a running job at its next progress step and marks it failed.
- ``procrastinate``: jobs are deferred into procrastinate's tables on PostgreSQL (the
  ``[queue]`` extra) and run by ``dockgate cloud train worker`` processes on any machine that
  has the ``[train]`` extra and reaches the database and the blob store.

Why the trainer is loaded by name: the cloud imports nothing from ``edge`` but the contracts
and the code grammar (a test enforces it), so the API process never needs torch; the job
imports ``edge.vision.learning`` when it runs, on a worker that has the training extra.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import importlib
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db.models import TrainingJob, utcnow
from cloud.deps import Services
from cloud.services import datasets
from cloud.services.audit import audit
from cloud.services.blobs import blob_store_for
from edge.contracts.errors import DockgateError, ErrorCode

KINDS = {"codes": "ocr.crnn", "defect": "defect"}  # job kind -> model (release) name
PREFIX = {"codes": "crnn", "defect": "defect"}  # version prefix of a job's candidate
ACTIVE = ("queued", "running")
LEARNING = "edge.vision.learning"
TASK = "dockgate.training.run"
QUEUE = "training"
PROGRESS_EVERY_S = 0.5


def learning() -> Any:
    """The trainers' and evaluators' Python API (see the module doc for why by name)."""
    return importlib.import_module(LEARNING)


class JobStoppedError(Exception):
    """The service is stopping: the running job ends at its next progress step."""


# -- rows ----------------------------------------------------------------------------------------
def create(
    s: Session, actor: str, kind: str, dataset_id: str, params: dict[str, Any], queue: str
) -> TrainingJob:
    """Record a queued job (the caller hands its id to a queue after the commit)."""
    if kind not in KINDS:
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"kind must be one of {', '.join(KINDS)}")
    ds = datasets.get(s, dataset_id)
    if not (ds.counts or {}).get("code" if kind == "codes" else "defect"):
        raise DockgateError(ErrorCode.NOT_FOUND, f"dataset {ds.id} has no {kind} members")
    if len(params) > 40 or any(
        not isinstance(v, str | int | float | bool) for v in params.values()
    ):
        raise DockgateError(ErrorCode.CONFIG_INVALID, "params: at most 40 scalar values")
    job = TrainingJob(
        kind=kind,
        model=KINDS[kind],
        dataset_id=ds.id,
        params=dict(params),
        queue=queue,
        created_by=actor,
        status="queued",
        stage="queued",
    )
    s.add(job)
    s.flush()
    audit(s, actor, "training.start", None, job=job.id, kind=kind, dataset=ds.id, params=params)
    return job


def parse_params(text: str) -> dict[str, Any]:
    """``KEY=VALUE`` per line (or separated by spaces or commas): the trainer's settings, as
    ``--param`` of ``dockgate cloud train start``; numbers and true/false are typed."""
    out: dict[str, Any] = {}
    for item in text.replace(",", " ").split():
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"trainer setting {item[:40]!r}: use KEY=VALUE")
        value: Any = {"true": True, "false": False}.get(raw.lower(), raw)
        if isinstance(value, str):
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    continue
        out[key] = value
    return out


def get(s: Session, job_id: int) -> TrainingJob:
    job = s.get(TrainingJob, job_id)
    if job is None:
        raise DockgateError(ErrorCode.NOT_FOUND, f"no training job {job_id}")
    return job


def listing(s: Session, limit: int = 100) -> list[TrainingJob]:
    """Jobs, newest first."""
    rows = s.execute(select(TrainingJob).order_by(TrainingJob.id.desc()).limit(limit))
    return list(rows.scalars())


def as_dict(job: TrainingJob) -> dict[str, Any]:
    """The job as the API and ``dockgate cloud train show --json`` give it."""
    return {
        "id": job.id,
        "kind": job.kind,
        "model": job.model,
        "dataset": job.dataset_id,
        "params": job.params,
        "queue": job.queue,
        "queue_job": job.queue_job,  # procrastinate's job id
        "status": job.status,
        "stage": job.stage,
        "step": job.step,
        "total": job.total,
        "percent": round(100.0 * job.step / job.total, 1) if job.total else None,
        "created_at": _iso(job.created_at),
        "created_by": job.created_by,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "heartbeat_at": _iso(job.heartbeat_at),
        "candidate": job.candidate,
        "evaluation": job.evaluation,
        "version": job.version,
        "rollout_id": job.rollout_id,
        "reason": job.reason,
    }


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


# -- running -------------------------------------------------------------------------------------
class Progress:
    """Writes the trainer's progress into the job's row, at most every ``PROGRESS_EVERY_S``
    (and at every new stage); raises :class:`JobStoppedError` once ``stop`` is set."""

    def __init__(self, svc: Services, job_id: int, stop: threading.Event | None) -> None:
        self.svc, self.job_id, self.stop = svc, job_id, stop
        self.stage, self.last = "", 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.stop is not None and self.stop.is_set():
            raise JobStoppedError("the service stopped during the job")
        now = time.monotonic()
        if stage == self.stage and now - self.last < PROGRESS_EVERY_S and done < total:
            return
        self.stage, self.last = stage, now
        with self.svc.sessions.begin() as s:
            job = get(s, self.job_id)
            job.stage, job.step, job.total = stage[:40], int(done), int(total)
            job.heartbeat_at = utcnow()


def _claim(svc: Services, job_id: int) -> TrainingJob | None:
    with svc.sessions.begin() as s:
        job = s.get(TrainingJob, job_id, with_for_update=True)
        if job is None or job.status != "queued":
            return None  # already run (a queue's retry) or gone
        job.status, job.stage = "running", "export"
        job.started_at = job.heartbeat_at = utcnow()
        job.worker = worker_id()
        return job


def run_job(svc: Services, job_id: int, stop: threading.Event | None = None) -> str:
    """Run one queued job to its end; returns its final status. Never raises for the job's
    own failures: they are recorded in its row (``failed`` and why) and the audit log."""
    from cloud.services import publish

    job = _claim(svc, job_id)
    if job is None:
        with svc.sessions() as s:
            row = s.get(TrainingJob, job_id)
            return row.status if row else "missing"
    work = svc.config.jobs_dir / str(job_id)
    progress = Progress(svc, job_id, stop)
    try:
        data = _export(svc, job, work)
        progress("training", 0, 0)
        version = f"{PREFIX[job.kind]}-{job.dataset_id}-j{job.id}"
        # the signed production model: a codes job fine-tunes it unless its params say not to
        prod = publish.production(svc.config.ota_dir, job.model)
        cand = learning().train(
            job.kind,
            data,
            work / "candidate",
            version=version,
            params=job.params,
            progress=progress,
            threads=svc.config.training_threads,
            production=prod[1] if prod else None,
        )
        with svc.sessions.begin() as s:
            row = get(s, job_id)
            row.candidate = {
                "file": str(cand.onnx),
                "version": cand.version,
                "sha256": cand.sha256,
                "size": cand.size,
                "seconds": round(cand.seconds, 2),
                "figures": cand.figures,
            }
        return publish.gate_and_publish(svc, job_id, cand, data, progress)
    except Exception as exc:  # the job's failure is data, not a crash of the queue
        reason = exc.message if isinstance(exc, DockgateError) else f"{type(exc).__name__}: {exc}"
        _finish(svc, job_id, "failed", reason[:2000], ErrorCode.TRAINING_FAILED)
        return "failed"


def _export(svc: Services, job: TrainingJob, work: Path) -> Path:
    data = work / "data"
    if data.exists():  # a previous attempt's export: start clean
        shutil.rmtree(data)
    with svc.reader() as s:
        datasets.export(s, job.dataset_id, blob_store_for(svc.config), data)
    return data


def _finish(svc: Services, job_id: int, status: str, reason: str, code: ErrorCode | None) -> None:
    with svc.sessions.begin() as s:
        job = get(s, job_id)
        job.status, job.reason, job.finished_at = status, reason, utcnow()
        job.stage = status
        audit(s, "training-job", f"training.{status}", code, job=job_id, reason=reason[:500])


# -- queues --------------------------------------------------------------------------------------
class InProcessQueue:
    """One worker thread of this process (``concurrent.futures``): jobs run one at a time."""

    name = "inprocess"

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.stop = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="training-job")
        self.futures: dict[int, concurrent.futures.Future[str]] = {}

    def submit(self, job_id: int) -> int | None:
        self.futures[job_id] = self.pool.submit(run_job, self.svc, job_id, self.stop)
        return None

    def wait(self, job_id: int, timeout: float | None = None) -> str:
        return self.futures[job_id].result(timeout)

    def close(self) -> None:
        """Stop: the running job ends at its next step (marked failed); queued ones stay
        ``queued`` in the table and are not run by this process."""
        self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


class ProcrastinateQueue:
    """procrastinate on PostgreSQL: :meth:`submit` defers, :meth:`work` runs a worker."""

    name = "procrastinate"

    def __init__(self, svc: Services) -> None:
        import procrastinate

        self.svc = svc
        url = svc.config.training_queue_url or svc.config.database_url
        self.conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=self.conninfo)
        )

        @self.app.task(name=TASK, queue=QUEUE, pass_context=False)
        def run(job_id: int) -> None:
            run_job(svc, job_id)

        self.task = run
        self.app.open()
        self.ensure_schema()

    def ensure_schema(self) -> None:
        """procrastinate's tables, created once in the URL's schema (search_path)."""
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if row is None or row[0] is None:
            self.app.schema_manager.apply_schema()

    def submit(self, job_id: int) -> int | None:
        return int(self.task.defer(job_id=job_id))

    def work(self, *, once: bool = False, concurrency: int = 1) -> None:
        """A worker: ``once`` runs what is queued and returns, else it waits for more jobs."""
        self.app.run_worker(
            queues=[QUEUE],
            wait=not once,
            concurrency=concurrency,
            install_signal_handlers=not once,
            listen_notify=not once,
        )

    def close(self) -> None:
        self.app.close()


TrainingQueue = InProcessQueue | ProcrastinateQueue


def recover_stale(svc: Services) -> list[int]:
    """Mark failed the jobs no queue will finish, and return their ids: a running job whose
    process is gone (it ran on this host, and that process no longer exists: killed, or the
    host rebooted), at once; and any job, queued or running, on any host, that has shown no
    sign of life for ``training_stale_s``."""
    limit = utcnow() - dt.timedelta(seconds=svc.config.training_stale_s)
    stale = []
    with svc.sessions.begin() as s:  # one transaction: a job that moves meanwhile is not touched
        query = select(TrainingJob).where(TrainingJob.status.in_(ACTIVE)).order_by(TrainingJob.id)
        for job in s.execute(query.with_for_update()).scalars():
            if job.status == "running" and job.worker and worker_gone(job.worker):
                pid = job.worker.split()[2]
                why = f"the process running it (pid {pid} on this host) is gone"
            elif _aware(job.heartbeat_at or job.created_at) < limit:
                why = f"no progress for {svc.config.training_stale_s} s: the process running it"
                why += " stopped"
            else:
                continue
            job.status = job.stage = "failed"
            job.reason, job.finished_at = why, utcnow()
            audit(s, "training-job", "training.failed", ErrorCode.TRAINING_FAILED,
                  job=job.id, reason=why)  # fmt: skip
            stale.append(job.id)
    return stale


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks after boot (field 22 of /proc/PID/stat): with
    the pid it names one process, even after the pid is reused. None when there is no such pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # fields after "(comm)" start at field 3


def worker_id() -> str:
    """This process, as :func:`worker_gone` can later recognise it: host, boot, pid, start."""
    pid = os.getpid()
    return f"{socket.gethostname()} {_boot_id()} {pid} {_start_ticks(pid) or '-'}"[:160]


def worker_gone(worker: str) -> bool:
    """Whether the process ``worker`` (from :func:`worker_id`) surely no longer exists. Only a
    process of this host can be known gone; one of another host (a procrastinate worker
    elsewhere) is left to the stale timeout."""
    parts = worker.split()
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[2].isdigit():
        return False
    if parts[1] == "-" or parts[3] == "-":
        return False  # no /proc to tell by
    if parts[1] != _boot_id():
        return True  # this host has rebooted since
    return _start_ticks(int(parts[2])) != parts[3]


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def queue_for(svc: Services) -> TrainingQueue:
    """The queue the config names (jobs left behind by a killed process are failed first)."""
    recover_stale(svc)
    if svc.config.training_queue == "procrastinate":
        return ProcrastinateQueue(svc)
    return InProcessQueue(svc)


def start(
    svc: Services,
    queue: TrainingQueue,
    actor: str,
    kind: str,
    dataset_id: str,
    params: dict[str, Any],
) -> TrainingJob:
    """Record the job and hand it to ``queue``; returns the row."""
    with svc.sessions.begin() as s:
        job = create(s, actor, kind, dataset_id, params, queue.name)
    queued = queue.submit(job.id)
    if queued is not None:
        with svc.sessions.begin() as s:
            get(s, job.id).queue_job = queued
            job.queue_job = queued
    return job
