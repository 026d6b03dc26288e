"""Process kills and network outages during the headless demo workload, with one table of figures.

The demo's stack (:class:`edge.demo.Demo`: cloud on SQLite, enrollment, MQTT broker, three AGV
simulators, the PLC and scanner simulators, master data, the conveyor video and its ASN) runs as
real child processes, plus the edge node (``tests/chaos/edge_proc.py``) and the sync agent
(``dockgate edge sync``) as two more children, so each can be SIGKILLed. The sync agent reaches
the cloud through a :class:`~tests.support.linkproxy.LinkProxy`.

During the run the harness SIGKILLs a random component at random times and restarts it after a
short pause (as a site's systemd or container runtime would), cuts the cloud link for a while,
flaps it, slows it (latency + bandwidth limit), and stops the broker for a while. Before every
kill it records what had been acknowledged: the ledger's committed events (seq, hash) and the
dispatch tasks. Afterwards (every fault off, backlog drained) it checks:

- no acknowledged ledger event or dispatch task lost (same seq, same hash; same task id);
- no carton read booked twice (one ``carton-read`` per carton id), no carton with two tasks;
- ``dockgate ledger verify`` passes; the cloud holds every edge event exactly once, in order,
  each envelope verifies against the device's certificate and the cloud's copy of the hash chain
  links; edge and cloud stock agree;
- during each outage the line kept booking and the operator saw a code (sync state for the
  cloud, the panel's equipment page for the broker).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from edge.demo import SITEMAP, Demo
from edge.demo_stack import Child, dockgate_argv, free_port
from tests.support.linkproxy import LinkProxy

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = ("edge-node", "sync-agent", "cloud", "broker", "agv-sim", "plc-sim")
FINAL_TASK_STATES = ("DONE", "FAILED", "CANCELLED")
STALL_S = 60.0  # open AGV tasks and none changed for this long: they are stuck, not queued
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Plan:
    """How long and how hard: the short run (``make test``) and the long one (``make chaos``)."""

    seconds: float = 80.0  # faults are injected during this window
    min_kills: int = 8
    kill_gap_s: tuple[float, float] = (3.0, 7.0)
    cloud_down_s: float = 12.0
    flap_s: float = 10.0
    slow_s: float = 10.0
    broker_down_s: float = 8.0
    cartons: int = 16  # in the looping conveyor video
    fps: float = 10.0
    seed: int = 20261122
    drain_timeout_s: float = 240.0

    @classmethod
    def from_env(cls, **defaults: Any) -> Plan:
        """The plan with ``DOCKGATE_CHAOS_SECONDS`` / ``_KILLS`` / ``_OUTAGE_S`` overrides."""
        plan = cls(**defaults)
        if os.environ.get("DOCKGATE_CHAOS_SECONDS"):
            plan.seconds = float(os.environ["DOCKGATE_CHAOS_SECONDS"])
        if os.environ.get("DOCKGATE_CHAOS_KILLS"):
            plan.min_kills = int(os.environ["DOCKGATE_CHAOS_KILLS"])
        if os.environ.get("DOCKGATE_CHAOS_OUTAGE_S"):
            out = float(os.environ["DOCKGATE_CHAOS_OUTAGE_S"])
            plan.cloud_down_s, plan.flap_s, plan.slow_s = out, out / 2, out / 2
            plan.broker_down_s = out / 3
        return plan


@dataclass
class Outage:
    kind: str
    seconds: float
    booked: int  # ledger events booked while it lasted (the line kept running)
    codes: set[str]
    backlog: int = 0  # sync backlog when it ended
    drain_s: float | None = None  # from its end until the backlog was empty again


@dataclass
class Memory:
    """RSS samples of one component: peak over every incarnation, growth of the longest one."""

    samples: dict[int, list[tuple[float, int]]] = field(default_factory=dict)  # pid -> (t, rss)

    def add(self, pid: int, t: float, rss: int) -> None:
        self.samples.setdefault(pid, []).append((t, rss))

    def peak_mb(self) -> float:
        return max((r for s in self.samples.values() for _, r in s), default=0) / 2**20

    def growth(self) -> tuple[float, float]:
        """(MB, seconds): RSS growth of the longest-lived incarnation from the end of its first
        third (warm-up) to its last sample."""
        longest = max(self.samples.values(), key=lambda s: s[-1][0] - s[0][0], default=[])
        if len(longest) < 3:
            return 0.0, 0.0
        start = longest[len(longest) // 3]
        end = longest[-1]
        return (end[1] - start[1]) / 2**20, end[0] - start[0]


@dataclass
class Result:
    seconds: float = 0.0
    cartons: int = 0
    events: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    outages: list[Outage] = field(default_factory=list)
    lost_events: list[str] = field(default_factory=list)
    lost_tasks: list[str] = field(default_factory=list)
    duplicated_reads: list[str] = field(default_factory=list)
    duplicated_tasks: list[str] = field(default_factory=list)
    cloud_missing: int = 0
    cloud_duplicated: int = 0
    cloud_chain_ok: bool = False
    cloud_chain_detail: str = ""
    ledger_verify: str = ""
    ledger_ok: bool = False
    stock_agree: bool = False
    stock_detail: str = ""
    max_backlog: int = 0
    drain_s: float = 0.0  # faults off -> outbox empty and acknowledged by the cloud
    settle_s: float = 0.0  # faults off -> also every AGV task finished
    tasks: Counter[str] = field(default_factory=Counter)
    memory: dict[str, Memory] = field(default_factory=dict)

    stuck_tasks: int = 0  # open tasks while no task changed for STALL_S: nothing would finish them

    @property
    def unfinished_tasks(self) -> int:
        return sum(n for k, n in self.tasks.items() if k not in FINAL_TASK_STATES)

    @property
    def lost(self) -> int:
        return len(self.lost_events) + len(self.lost_tasks) + self.cloud_missing

    @property
    def duplicated(self) -> int:
        return len(self.duplicated_reads) + len(self.duplicated_tasks) + self.cloud_duplicated

    def table(self) -> str:
        rows = [
            ("run length (faults on)", f"{self.seconds:.0f} s"),
            ("cartons processed (carton-read events)", str(self.cartons)),
            ("ledger events", str(self.events)),
            ("kills (SIGKILL) total", str(sum(self.kills.values()))),
        ]
        rows += [(f"  kills: {c}", str(self.kills.get(c, 0))) for c in COMPONENTS]
        rows.append(("outages", str(len(self.outages))))
        for o in self.outages:
            codes = ", ".join(sorted(o.codes)) or "none seen"
            text = f"{o.seconds:.0f} s, {o.booked} events booked, codes {codes}"
            if o.kind != "broker unreachable":
                drained = "not within the run" if o.drain_s is None else f"{o.drain_s:.0f} s"
                text += f"; backlog {o.backlog} at its end, empty again after {drained}"
            rows.append((f"  {o.kind}", text))
        rows += [
            ("events lost (goal 0)", f"{self.lost} (ledger {len(self.lost_events)}, tasks "
             f"{len(self.lost_tasks)}, cloud {self.cloud_missing})"),
            ("events duplicated (goal 0)", f"{self.duplicated} (reads {len(self.duplicated_reads)},"
             f" tasks {len(self.duplicated_tasks)}, cloud {self.cloud_duplicated})"),
            ("ledger verify (edge chain)", self.ledger_verify),
            ("cloud chain + envelopes", self.cloud_chain_detail),
            ("edge and cloud stock agree", "yes" if self.stock_agree
             else f"NO {self.stock_detail}"),
            ("dispatch tasks", ", ".join(f"{k} {v}" for k, v in sorted(self.tasks.items()))
             + f" (open at the end: {self.unfinished_tasks}, of which stuck: {self.stuck_tasks}; "
             "FAILED = AGV killed mid-order, carton flagged for a person)"),
            ("max sync backlog", f"{self.max_backlog} events"),
            ("time to drain the backlog after the last fault", f"{self.drain_s:.1f} s"),
            ("time until every AGV task finished", f"{self.settle_s:.1f} s"
             + (" (AGVs still working through the queue at the drain limit)"
                if self.unfinished_tasks and not self.stuck_tasks else "")),
        ]  # fmt: skip
        for name in COMPONENTS:
            mem = self.memory.get(name)
            if mem is None:
                continue
            grow, over = mem.growth()
            rows.append(
                (f"memory {name}", f"peak {mem.peak_mb():.0f} MB, growth {grow:+.1f} MB over "
                 f"{over:.0f} s after warm-up ({len(mem.samples)} incarnations)")
            )  # fmt: skip
        width = max(len(a) for a, _ in rows)
        line = "-" * (width + 60)
        out = [line, "Dockgate chaos run", line]
        out += [f"{a.ljust(width)}  {b}" for a, b in rows]
        out.append(line)
        return "\n".join(out)


class ChaosRun:
    """The demo stack under faults. Use as a context manager; :meth:`run` does everything."""

    def __init__(self, root: Path, plan: Plan, say: Callable[[str], None] = print) -> None:
        self.root, self.plan, self.say = root, plan, say
        self.rng = random.Random(plan.seed)
        self._bag: list[str] = []  # components still to kill in this round
        self.demo = Demo(root, plan.cartons, plan.seed, plan.fps, loop=True, broker="auto")
        self.stack = self.demo.stack
        self.children: dict[str, Child] = {}
        self.spawners: dict[str, Callable[[], Child]] = {}
        self.result = Result()
        self.acked_events: dict[int, str] = {}
        self.acked_tasks: set[str] = set()
        self._stop_sampler = threading.Event()
        self._draining: tuple[Outage, float] | None = None
        self._drain_end = time.time()
        self._sampler: threading.Thread | None = None
        self.proxy: LinkProxy | None = None

    def __enter__(self) -> ChaosRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop_sampler.set()
        if self._sampler is not None:
            self._sampler.join(10)
        self.stack.stop()
        if self.proxy is not None:
            self.proxy.stop()

    # set-up ----------------------------------------------------------------------------------
    def start(self) -> None:
        d = self.demo
        d.prepare()
        token = d.start_cloud()
        cloud_port = int(d.urls["cloud"].rsplit(":", 1)[1])
        self.children["cloud"] = self.stack.children[-1]
        self.spawners["cloud"] = lambda: self.stack.cloud(d.cloud_config, cloud_port)
        link_port = free_port()
        self.proxy = LinkProxy(link_port, cloud_port).start()
        d.urls["cloud"] = f"http://127.0.0.1:{link_port}"  # the edge reaches it through the link
        peers = d.start_peers()
        names = {"mosquitto": "broker", "embedded-broker": "broker"}
        for child in self.stack.children:
            name = names.get(child.name, child.name)
            if name in COMPONENTS and name not in self.children:
                self.children[name] = child
        self.spawners["broker"] = lambda: self.stack.broker(peers["broker"], "auto")
        self.spawners["agv-sim"] = lambda: self.stack.agvs(peers["broker"], SITEMAP, count=3)
        self.spawners["plc-sim"] = lambda: self.stack.plc(peers["plc"])
        self.panel_port = free_port()
        full = d.write_config(peers, self.panel_port)
        text = full.read_text()
        self.node_config = self.root / "edge-node.toml"
        self.node_config.write_text(re.sub(r"(?m)^cloud_url = .*\n", "", text))
        self.sync_config = self.root / "edge-sync.toml"
        self.sync_config.write_text(
            text.replace(
                "interval_s = 0.5\n",
                "interval_s = 0.5\ntimeout_s = 5\nbackoff_base_s = 0.2\nbackoff_cap_s = 2\n"
                "freeze_wait_s = 1\n",
            )
        )
        d.enroll(full, token)
        from edge.config import load_edge_config

        self.config = load_edge_config(self.node_config)
        d.seed_master_data(self.config)
        self.ledger_path = self.config.ledger.resolved_path(self.config.device)
        self.tasks_path = self.config.agv.resolved_db_path(self.config.device.data_dir)
        assert d.video_dir is not None
        video_dir = d.video_dir
        env = {"PYTHONPATH": str(REPO)}
        edge_argv = [sys.executable, str(REPO / "tests" / "chaos" / "edge_proc.py"),
                     str(self.node_config), str(video_dir), str(self.plan.fps)]  # fmt: skip
        self.spawners["edge-node"] = lambda: self.stack.spawn("edge-node", edge_argv, env)
        sync_argv = dockgate_argv("edge", "sync", "--config", str(self.sync_config))
        self.spawners["sync-agent"] = lambda: self.stack.spawn("sync-agent", sync_argv, env)
        for name in ("edge-node", "sync-agent"):
            self.children[name] = self.spawners[name]()
        self._wait_booking(120)
        self.result.memory = {name: Memory() for name in COMPONENTS}
        self._sampler = threading.Thread(target=self._sample, name="chaos-sampler", daemon=True)
        self._sampler.start()

    def _wait_booking(self, timeout: float, restart: bool = False) -> None:
        deadline = time.monotonic() + timeout
        start = self._head()
        while self._head() <= start:
            child = self.children["edge-node"]
            if not child.alive() and restart:  # exited by itself: as the supervisor would
                self.say(f"chaos: edge-node exited by itself: {child.tail(600)}")
                self.restart("edge-node")
                continue
            if not child.alive():
                raise RuntimeError(f"edge node died: {child.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the edge node booked nothing in {timeout:.0f}s: {child.tail()}"
                )
            time.sleep(0.5)

    # observations ------------------------------------------------------------------------------
    def _query(self, path: Path, sql: str) -> list[tuple[Any, ...]]:
        if not path.exists():
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def _head(self) -> int:
        rows = self._query(self.ledger_path, "SELECT COALESCE(MAX(seq), 0) FROM events")
        return int(rows[0][0]) if rows else 0

    def _backlog(self) -> int:
        rows = self._query(self.ledger_path, "SELECT COUNT(*) FROM outbox")
        return int(rows[0][0]) if rows else 0

    def _sync_state(self) -> dict[str, Any]:
        path = self.config.device.data_dir / "sync-state.json"
        with contextlib.suppress(OSError, ValueError):
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        return {}

    def _snapshot(self) -> None:
        """Record what is acknowledged now: committed ledger events and stored dispatch tasks."""
        for seq, digest in self._query(self.ledger_path, "SELECT seq, hash FROM events"):
            self.acked_events.setdefault(int(seq), str(digest))
        for (task_id,) in self._query(self.tasks_path, "SELECT task_id FROM tasks"):
            self.acked_tasks.add(str(task_id))

    def _sample(self) -> None:
        t0 = time.monotonic()
        while not self._stop_sampler.wait(2.0):
            now = time.monotonic() - t0
            for name, child in list(self.children.items()):
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(child.proc.pid)
                    rss = proc.memory_info().rss + sum(
                        c.memory_info().rss for c in proc.children(recursive=True)
                    )
                    self.result.memory[name].add(child.proc.pid, now, rss)
            with contextlib.suppress(sqlite3.Error):
                backlog = self._backlog()
                self.result.max_backlog = max(self.result.max_backlog, backlog)
                draining = self._draining
                if draining is not None and backlog == 0:
                    draining[0].drain_s = time.monotonic() - draining[1]
                    self._draining = None

    # faults ------------------------------------------------------------------------------------
    def kill(self, name: str) -> None:
        self._snapshot()
        child = self.children[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, signal.SIGKILL)
        child.proc.wait(10)
        self.result.kills[name] += 1

    def restart(self, name: str) -> None:
        self.children[name] = self.spawners[name]()

    def _kill_random(self, exclude: set[str]) -> None:
        # a shuffle bag: every component is killed once, in random order, before any twice, so
        # even the short run in make test kills each of them
        if not any(c not in exclude for c in self._bag):
            fresh = list(COMPONENTS)
            self.rng.shuffle(fresh)
            self._bag += fresh
        name = next(c for c in self._bag if c not in exclude)
        self._bag.remove(name)
        self.kill(name)
        time.sleep(self.rng.uniform(0.2, 2.0))
        self.restart(name)

    def _outage(self, kind: str, seconds: float, kills_until: float) -> None:
        """One outage, with kills of other components going on meanwhile. It starts on a running
        line (the edge node booking) and the edge node is not killed while it lasts, so the
        'line kept running' figure measures the outage, not a restart."""
        assert self.proxy is not None
        self._wait_booking(180, restart=True)
        head0, t0, codes = self._head(), time.monotonic(), set()
        end = t0 + seconds
        next_flip = t0
        if kind == "broker unreachable":
            self.kill("broker")
            self.result.kills["broker"] -= 1  # an outage, not counted as a kill
        elif kind == "cloud unreachable":
            self.proxy.set_mode("down")
        elif kind.startswith("slow"):
            self.proxy.set_mode("slow")
        next_kill = t0 + self.rng.uniform(*self.plan.kill_gap_s)
        while time.monotonic() < end:
            if kind == "flapping link" and time.monotonic() >= next_flip:
                self.proxy.set_mode("down" if self.proxy.mode == "up" else "up")
                next_flip = time.monotonic() + self.rng.uniform(1.0, 3.0)
            if time.monotonic() >= next_kill and time.monotonic() < kills_until:
                exclude = {"broker", "agv-sim"} if kind == "broker unreachable" else {"cloud"}
                exclude |= {"edge-node"} | ({"sync-agent"} if "cloud" in kind else set())
                self._kill_random(exclude)
                next_kill = time.monotonic() + self.rng.uniform(*self.plan.kill_gap_s)
            codes |= self._operator_codes(kind)
            time.sleep(0.5)
        if kind == "broker unreachable":
            codes |= self._operator_codes(kind)
            self.restart("broker")
        else:
            self.proxy.set_mode("up")
        outage = Outage(kind, time.monotonic() - t0, self._head() - head0, codes, self._backlog())
        self.result.outages.append(outage)
        if kind != "broker unreachable":
            self._draining = (outage, time.monotonic())

    def _operator_codes(self, kind: str) -> set[str]:
        """The codes an operator sees now: the sync state (``dockgate edge status``, the panel's
        sync row) for the cloud link, the panel's equipment page for the broker."""
        if kind != "broker unreachable":
            code = self._sync_state().get("last_error_code")
            return {str(code)} if code else set()
        try:
            html = self._panel_get("/equipment")
        except (httpx.HTTPError, RuntimeError):
            return set()
        return {c for c in ("BROKER_UNREACHABLE", "AGV_UNAVAILABLE") if c in html}

    def _panel_get(self, path: str) -> str:
        base = f"http://127.0.0.1:{self.panel_port}"
        with httpx.Client(base_url=base, timeout=5) as client:
            page = client.get("/login").text
            match = CSRF.search(page)
            if match is None:
                raise RuntimeError("no CSRF token on the login page")
            client.post("/login", data={"username": "demo", "csrf_token": match.group(1),
                                        "password": self.demo.panel_password})  # fmt: skip
            return client.get(path).text

    def inject(self) -> None:
        """The fault schedule: kills all along, the four outages at fixed points of the run."""
        p = self.plan
        t0 = time.monotonic()
        end = t0 + p.seconds
        outages = [
            (0.10, "cloud unreachable", p.cloud_down_s),
            (0.35, "flapping link", p.flap_s),
            (0.55, "slow link (300 ms, 16 kB/s)", p.slow_s),
            (0.75, "broker unreachable", p.broker_down_s),
        ]
        next_kill = t0 + self.rng.uniform(*p.kill_gap_s)
        while time.monotonic() < end or sum(self.result.kills.values()) < p.min_kills:
            now = time.monotonic()
            if outages and now - t0 >= outages[0][0] * p.seconds:
                _, kind, seconds = outages.pop(0)
                self.say(f"chaos: {kind} for {seconds:.0f}s")
                self._outage(kind, seconds, end)
                continue
            if now >= next_kill:
                self._kill_random(set())
                self.say(f"chaos: {sum(self.result.kills.values())} kills "
                         f"{dict(self.result.kills)} head {self._head()}")  # fmt: skip
                next_kill = time.monotonic() + self.rng.uniform(*p.kill_gap_s)
            for name, child in self.children.items():  # a component that died on its own
                if not child.alive():
                    self.say(f"chaos: {name} exited by itself: {child.tail(600)}")
                    self.restart(name)
            time.sleep(0.2)
        self.result.seconds = time.monotonic() - t0

    # after -------------------------------------------------------------------------------------
    def drain(self) -> None:
        """Faults off: wait until the outbox is empty, the cloud has acknowledged the head and
        no dispatch task is open, then stop the node and the sync agent cleanly."""
        t0 = time.monotonic()
        deadline = t0 + self.plan.drain_timeout_s
        self.stop_line()
        while time.monotonic() < deadline:
            head = self._head()
            acked = int(self._sync_state().get("cloud_hwm") or 0)
            open_tasks = self._query(
                self.tasks_path,
                "SELECT COUNT(*) FROM tasks WHERE status NOT IN ('DONE','FAILED','CANCELLED')",
            )
            synced = self._backlog() == 0 and acked >= head
            if synced and not self.result.drain_s:
                self.result.drain_s = time.monotonic() - t0
            if synced and open_tasks and open_tasks[0][0] == 0:
                break
            if synced and self._tasks_idle_s() > STALL_S:
                self.result.stuck_tasks = int(open_tasks[0][0]) if open_tasks else 0
                break
            for name, child in self.children.items():
                if not child.alive():
                    self.restart(name)
            time.sleep(0.5)
        self.result.settle_s = time.monotonic() - t0
        self._drain_end = time.time()  # staleness of AGV tasks is judged at this moment
        for name in ("edge-node", "sync-agent"):
            self.children[name].stop(60)

    def _tasks_idle_s(self) -> float:
        """Seconds since any dispatch task last changed (wall clock: the store's timestamps)."""
        rows = self._query(self.tasks_path, "SELECT MAX(updated_at) FROM tasks")
        last = rows[0][0] if rows and rows[0][0] is not None else time.time()
        return time.time() - float(last)

    def stop_line(self) -> None:
        """The end of the shift: the node's camera stops (SIGUSR1, see ``edge_proc.py``); the
        node keeps running so the cartons in flight are booked and their AGV orders finish."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.children["edge-node"].proc.pid, signal.SIGUSR1)

    def check(self) -> Result:
        self._snapshot_final()
        return self.result

    def _snapshot_final(self) -> None:
        from edge.ledger import Ledger

        r = self.result
        r.tasks = Counter(
            str(s) for (s,) in self._query(self.tasks_path, "SELECT status FROM tasks")
        )
        final_tasks = Counter(
            str(c) for (c,) in self._query(self.tasks_path, "SELECT carton_id FROM tasks")
        )
        r.duplicated_tasks = [c for c, n in final_tasks.items() if n > 1]
        task_ids = {str(t) for (t,) in self._query(self.tasks_path, "SELECT task_id FROM tasks")}
        r.lost_tasks = sorted(self.acked_tasks - task_ids)
        # an AGV task on a vehicle that has not moved it on for STALL_S is stuck too, even while
        # the other vehicles keep working
        stale = self._query(
            self.tasks_path,
            "SELECT COUNT(*) FROM tasks WHERE status NOT IN ('DONE','FAILED','CANCELLED','QUEUED')"
            f" AND updated_at < {self._drain_end - STALL_S}",
        )
        r.stuck_tasks = max(r.stuck_tasks, int(stale[0][0]) if stale else 0)
        verify = subprocess.run(
            dockgate_argv("ledger", "--config", str(self.node_config), "verify"),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        r.ledger_ok = verify.returncode == 0
        r.ledger_verify = (verify.stdout.strip() or verify.stderr.strip())[-300:]
        with Ledger.open(self.ledger_path, self.config.device.id) as led:
            head, _ = led.head()
            events = led.events(0, head + 10)
            edge_stock = {(s.location, s.sku, s.lot): s.qty for s in led.stock()}
        r.events = len(events)
        final = {e.seq: e.hash for e in events}
        r.lost_events = [
            f"seq {s}" for s, h in sorted(self.acked_events.items()) if final.get(s) != h
        ]
        reads = Counter(str(e.payload.get("carton_id")) for e in events if e.kind == "carton-read")
        r.cartons = sum(reads.values())
        r.duplicated_reads = [c for c, n in reads.items() if n > 1]
        self._check_cloud(events, edge_stock)

    def _check_cloud(self, events: list[Any], edge_stock: dict[tuple[str, str, str], int]) -> None:
        from cryptography import x509
        from sqlalchemy import select

        from cloud.config import CloudConfig
        from cloud.db.models import DeviceCert, EventRow, Stock
        from cloud.deps import Services
        from edge.contracts.envelope import DeviceKey, verify_envelope
        from edge.contracts.event import GENESIS_HASH, event_hash

        r = self.result
        cloud_dir = self.root / "cloud"
        svc = Services.from_config(
            CloudConfig(
                database_url=f"sqlite:///{cloud_dir / 'cloud.db'}",
                issuing_dir=cloud_dir / "ca" / "issuing",
            ),
            run_migrations=False,
        )
        try:
            with svc.sessions() as s:
                rows = s.execute(select(EventRow).order_by(EventRow.seq)).scalars().all()
                certs = s.execute(select(DeviceCert)).scalars().all()
                cloud_stock = {
                    (x.location, x.sku, x.lot): x.qty for x in s.execute(select(Stock)).scalars()
                }
                keys = [
                    DeviceKey.from_cert(x509.load_pem_x509_certificate(c.cert_pem.encode()))
                    for c in certs
                ]
                ids = Counter(row.id for row in rows)
                r.cloud_duplicated = sum(n - 1 for n in ids.values() if n > 1)
                edge_ids = [e.id for e in events]
                r.cloud_missing = len(set(edge_ids) - set(ids))
                prev, bad = GENESIS_HASH, []
                by_seq = {e.seq: e for e in events}
                for row in rows:
                    verified = None
                    for key in keys:
                        with contextlib.suppress(Exception):
                            verified = verify_envelope(row.envelope, key)
                            break
                    body = {}
                    if verified is not None:
                        body = {k: v for k, v in verified.event.items() if k != "hash"}
                    edge = by_seq.get(row.seq)
                    if (
                        verified is None
                        or edge is None
                        or verified.event != edge.to_dict()
                        or event_hash(body) != row.hash
                        or row.prev_hash != prev
                    ):
                        bad.append(row.seq)
                    prev = row.hash
        finally:
            svc.close()
        r.cloud_chain_ok = not bad and [row.seq for row in rows] == [e.seq for e in events]
        r.cloud_chain_detail = f"{'OK' if r.cloud_chain_ok else 'FAILED'} {len(rows)} events" + (
            f", first bad seq {bad[0]}" if bad else ""
        )
        r.stock_agree = cloud_stock == edge_stock
        if not r.stock_agree:
            diff = set(cloud_stock.items()) ^ set(edge_stock.items())
            r.stock_detail = str(sorted(diff)[:5])

    def run(self) -> Result:
        self.start()
        self.say(f"chaos: stack up, edge booking (head {self._head()}); faults for "
                 f"{self.plan.seconds:.0f}s")  # fmt: skip
        self.inject()
        self.say("chaos: faults off, draining")
        self.drain()
        return self.check()
