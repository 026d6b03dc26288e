"""``dockgate demo``: the unattended inbound gate end to end, on one machine, in a fresh workspace.

Starts the cloud service on SQLite (fleet CA, enrollment token), enrolls the edge device, starts
an MQTT broker (Mosquitto when installed, else the embedded amqtt broker of
:mod:`edge.demo_broker`), three simulated AGVs on the example site map, the PLC simulator and a
scanner simulator on a pty (all real child processes, see :mod:`edge.demo_stack`), seeds the
ledger's master data, and runs the edge node in this process on a generated conveyor video
(:mod:`fixtures.conveyor`) with the presence trigger, AGV dispatch and cloud sync on.

Live (default): prints the panel's and the cloud's URLs and one status line until Ctrl-C, which
stops everything. ``--headless``: runs the video to completion, waits for AGV orders and sync to
settle, scores every carton against the generator's truth and prints a summary; exits 1 if any
check fails. A false freeze (an undamaged carton frozen by the defect model) is reported, not
hidden, but is a model-quality figure rather than a failed check.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.table import Table

from edge.camera.frame import Frame
from edge.camera.sources import OpenCVSource, SourceState
from edge.demo_stack import Stack, free_port

console = Console()
REPO = Path(__file__).resolve().parents[1]
SITEMAP = REPO / "fixtures" / "agv" / "sitemap.toml"
DEVICE, SITE, ORG = "demo-dock-01", "demo-site", "demo-org"
# ledger locations of the example site map (fixtures/agv/sitemap.toml [locations]); INBOUND,
# QUARANTINE and OUTBOUND are built into the ledger
LOCATIONS = [(f"A-{n:02d}", "storage", 10 + n) for n in range(1, 11)]
LOCATIONS += [(f"B-{n:02d}", "storage", 40 + n) for n in range(1, 7)]
LOCATIONS += [("Q-01", "quarantine", 90), ("Q-02", "quarantine", 91)]


class PacedSource:
    """A video file delivered at its frame rate, as the gate camera would deliver it (a file
    read as fast as possible would flood the pipeline and divert cartons a real line never
    would)."""

    def __init__(self, path: Path, fps: float, *, loop: bool = False) -> None:
        self._inner = OpenCVSource(str(path), source_id="gate", is_file=True, loop=loop)
        self.source_id = "gate"
        self.state: SourceState = self._inner.state  # the same object: the panel sees the camera
        self.period = 1.0 / fps
        self._closed = threading.Event()

    def frames(self) -> Iterator[Frame]:
        due = time.monotonic()
        for frame in self._inner.frames():
            due += self.period
            yield frame
            if self._closed.wait(max(0.0, due - time.monotonic())):
                return

    def close(self) -> None:
        self._closed.set()
        self._inner.close()


@dataclass
class Demo:
    root: Path
    cartons: int
    seed: int
    fps: float
    loop: bool = False  # play the video again and again (soak runs)
    asn: bool = True  # the reader matches codes against the delivery's ASN (asn.json)
    video_dir: Path | None = None  # a conveyor video made beforehand (default: generate one)
    broker: str = "auto"  # MQTT broker: auto (Mosquitto when installed, else embedded) | ...
    stack: Stack = field(init=False)
    node: Any = None
    truth: list[Any] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stack = Stack(self.root)

    # set-up ------------------------------------------------------------------------------
    def prepare(self) -> None:
        from fixtures.conveyor import ConveyorSpec, write_conveyor
        from fixtures.conveyor.video import load_truth

        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, mode=0o700)
        if self.video_dir is not None:
            self.truth = load_truth(self.video_dir)
        else:
            self.video_dir = self.root / "conveyor"
            spec = ConveyorSpec(cartons=self.cartons, seed=self.seed, fps=self.fps)
            self.truth = write_conveyor(self.video_dir, spec)
        damaged = sum(t.damage != "ok" for t in self.truth)
        say(f"conveyor video: {len(self.truth)} cartons ({damaged} damaged) at {self.fps:g} fps")

    def start_cloud(self) -> str:
        cloud = self.root / "cloud"
        cloud.mkdir(mode=0o700)
        self.stack.run("cloud ca init", "cloud", "ca", "init", "--dir", str(cloud / "ca"),
                       "--org", ORG)  # fmt: skip
        config = cloud / "cloud.toml"
        config.write_text(
            f'database_url = "sqlite:///{cloud / "cloud.db"}"\n'
            f'issuing_dir = "{cloud / "ca" / "issuing"}"\nfreeze_poll_s = 0.2\n'
            f'blob_dir = "{cloud / "blobs"}"\n'
        )
        self.viewer_password = _secret_file(cloud / "viewer.password")
        self.stack.run("cloud user add", "cloud", "user", "add", "demo-viewer", "--role",
                       "viewer", "--config", str(config),
                       env={"DOCKGATE_CLOUD_PASSWORD": self.viewer_password})  # fmt: skip
        token = self.stack.run("cloud token create", "cloud", "token", "create", "--config",
                               str(config), "--org", ORG, "--site", SITE, "--device", DEVICE,
                               "--ttl-hours", "1").strip().splitlines()[-1]  # fmt: skip
        port = free_port()
        self.stack.cloud(config, port)
        self.cloud_config = config
        self.urls["cloud"] = f"http://127.0.0.1:{port}"
        say(f"cloud service on {self.urls['cloud']} (SQLite, fleet CA in {cloud / 'ca'})")
        return token

    def start_peers(self) -> dict[str, Any]:
        broker, plc = free_port(), free_port()
        child = self.stack.broker(broker, self.broker)
        kind = "mosquitto" if child.name == "mosquitto" else "embedded MQTT broker (amqtt)"
        self.stack.agvs(broker, SITEMAP, count=3)
        self.stack.plc(plc)
        link = self.root / "scanner"
        self.stack.scanner(link)
        say(f"{kind} on :{broker}; 3 AGVs; PLC on :{plc}; scanner on {link}")
        return {"broker": broker, "plc": plc, "scanner": link}

    def write_config(self, peers: dict[str, Any], panel_port: int) -> Path:
        cfg = self.root / "edge.toml"
        cfg.write_text(
            f'[device]\nid = "{DEVICE}"\nsite = "{SITE}"\norg = "{ORG}"\n'
            f'data_dir = "{self.root / "edge"}"\n\n'
            # the demo's cloud is on this machine: lift the 64 KiB/s sample cap meant for a
            # dock's shared uplink, so the whole-frame samples arrive before the report
            f'[sync]\ncloud_url = "{self.urls["cloud"]}"\ninterval_s = 0.5\n'
            f"samples_max_kib_s = 2048\n\n"
            f'[agv]\nbroker_port = {peers["broker"]}\nsitemap = "{SITEMAP}"\n'
            f"state_timeout_s = 10\n\n"
            f'[line_io]\ntype = "modbus_tcp"\nhost = "127.0.0.1"\nport = {peers["plc"]}\n\n'
            f'[scanner]\ntype = "serial"\nport = "{peers["scanner"]}"\ntrigger = "none"\n\n'
            f'[panel]\nhost = "127.0.0.1"\nport = {panel_port}\nlanguage = "en"\n\n'
            f'[camera.source]\ntype = "file"\npath = "{self.video}"\n\n'
            f'[gate]\nnode = "D1"\n\n[pipeline]\ntrigger = "presence"\n'
        )
        return cfg

    def enroll(self, config: Path, token: str) -> None:
        out = self.stack.run("edge enroll", "edge", "enroll", "--config", str(config),
                             "--cloud", self.urls["cloud"],
                             env={"DOCKGATE_ENROLL_TOKEN": token})  # fmt: skip
        say(out.strip().splitlines()[0])
        self.panel_password = _secret_file(self.root / "panel.password")
        self.stack.run("edge user add", "edge", "user", "add", "demo", "--role", "supervisor",
                       "--password-stdin", "--config", str(config),
                       stdin=self.panel_password + "\n")  # fmt: skip

    def seed_master_data(self, config: Any) -> None:
        from edge.runtime import components

        ledger = components.open_ledger(config, components.device_signer(config))
        try:
            actor = "user:demo-admin"
            for code, zone, rank in LOCATIONS:
                ledger.add_location(code, zone, actor=actor, rank=rank)
            for n, gtin in enumerate(sorted({t.gtin for t in self.truth})):
                ledger.add_sku(f"SKU-{n:04d}", gtin=gtin, name=f"demo product {n}",
                               case_qty=12, actor=actor)  # fmt: skip
        finally:
            ledger.close()

    def start(self) -> None:
        from edge.config import load_edge_config
        from edge.runtime.node import EdgeNode

        self.prepare()
        token = self.start_cloud()
        peers = self.start_peers()
        panel_port = free_port()
        path = self.write_config(peers, panel_port)
        self.enroll(path, token)
        config = load_edge_config(path)
        self.seed_master_data(config)
        source = PacedSource(self.video, self.fps, loop=self.loop)
        expect = self.asn_lines() if self.asn else None
        self.node = EdgeNode(
            config,
            source=source,
            panel_port=panel_port,
            expect=(lambda: expect) if expect else None,
        )
        started = time.monotonic()
        self.node.start()
        self.ready_s = time.monotonic() - started
        self.urls["panel"] = f"http://127.0.0.1:{panel_port}"
        say(f"edge node ready in {time.monotonic() - started:.1f}s")
        say(f"panel: {self.urls['panel']}  (user demo, password in {self.root / 'panel.password'})")
        say(f"cloud: {self.urls['cloud']}/docs  (viewer demo-viewer, password in "
            f"{self.root / 'cloud' / 'viewer.password'})")  # fmt: skip

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()
            self.node = None
        self.stack.stop()

    def asn_lines(self) -> list[Any]:
        """The delivery's advance shipping notice (with decoy lines, as real ASNs have)."""
        from edge.vision.ocr.reader import ASN

        assert self.video_dir is not None
        rows = json.loads((self.video_dir / "asn.json").read_text())
        return [ASN(gtin=r["gtin"], lot=r["lot"], expiry=r["expiry"]) for r in rows]

    @property
    def video(self) -> Path:
        assert self.video_dir is not None
        return self.video_dir / "conveyor.avi"

    # watching ----------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        node = self.node
        outcomes = list(node.pipeline.outcomes)
        c = {"cartons": len(outcomes)}
        for o in outcomes:
            c[o.status] = c.get(o.status, 0) + 1
            c["decision:" + o.decision.value] = c.get("decision:" + o.decision.value, 0) + 1
        tasks = node.dispatch.dispatcher.status()["tasks"] if node.dispatch else {}
        c["tasks"] = sum(tasks.values())
        c["tasks_done"] = tasks.get("DONE", 0)
        c["tasks_open"] = c["tasks"] - sum(tasks.get(k, 0) for k in ("DONE", "FAILED", "CANCELLED"))
        c["backlog"] = node.ledger.outbox_stats().pending
        return c

    def status_line(self) -> str:
        c = self.counts()
        return (
            f"cartons {c['cartons']}/{len(self.truth)} | reads ok {c.get('ACCEPTED', 0)} "
            f"review {c.get('REVIEW', 0)} unreadable {c.get('UNREADABLE', 0)} "
            f"diverted {c.get('DIVERTED', 0)} | freezes {c.get('decision:FROZEN', 0)} | dispatches "
            f"{c['tasks_done']}/{c['tasks']} | sync backlog {c['backlog']}"
        )

    def settled(self) -> bool:
        c = self.counts()
        return self.node.pipeline.idle() and c["tasks_open"] == 0 and c["backlog"] == 0

    def cloud_acknowledged(self) -> int:
        from edge.panel.server import SYNC_STATE_FILE
        from edge.sync.state import StateFile

        state = StateFile(self.node.config.device.data_dir / SYNC_STATE_FILE).load()
        return int(state.cloud_hwm or 0)


def say(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


def _secret_file(path: Path) -> str:
    """A fresh random password in a file only the owner can read (never printed or logged)."""
    value = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


@click.command()
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path("data/demo"),
    show_default=True,
    help="Fresh workspace for the demo (wiped at start).",
)
@click.option(
    "--headless", is_flag=True, help="Run to completion, print a summary, exit 1 on failure."
)
@click.option("--cartons", default=20, show_default=True, type=click.IntRange(1, 100000),
              help="cartons in the generated conveyor video")  # fmt: skip
@click.option("--asn/--no-asn", default=True, show_default=True,
              help="match codes against the delivery's ASN (the video's asn.json)")  # fmt: skip
@click.option("--seed", default=7, show_default=True, type=int, help="conveyor video seed")
@click.option("--fps", default=10.0, show_default=True, type=click.FloatRange(1, 60),
              help="camera rate (12 frames per carton: 10 fps = 3,000 cartons/h)")  # fmt: skip
@click.option("--broker", type=click.Choice(["auto", "mosquitto", "embedded"]), default="auto",
              show_default=True,
              help="MQTT broker: Mosquitto when installed (auto), else embedded amqtt")  # fmt: skip
@click.option("--timeout", default=600.0, show_default=True, type=click.FloatRange(10, 86400),
              help="headless: stop waiting for AGVs and sync after this many seconds")  # fmt: skip
def demo(
    workdir: Path,
    headless: bool,
    cartons: int,
    asn: bool,
    seed: int,
    fps: float,
    broker: str,
    timeout: float,
) -> None:
    """Run the unattended inbound gate end to end: cloud, enrollment, broker, AGV/PLC/scanner
    simulators and the edge node on a generated conveyor video.

    Live: prints the panel's and the cloud's URLs and a status line; Ctrl-C stops everything.
    --headless: runs the video to completion and prints a summary table scored against the
    video's ground truth; exits 1 if any check fails.
    """
    from edge.demo_report import report

    signal.signal(signal.SIGTERM, _interrupt)
    run = Demo(workdir.absolute(), cartons, seed, fps, asn=asn, broker=broker)
    ok = False
    try:
        run.start()
        if headless:
            deadline = time.monotonic() + timeout
            last = 0.0
            while not run.settled() and time.monotonic() < deadline:
                if time.monotonic() - last > 5:
                    say(run.status_line())
                    last = time.monotonic()
                time.sleep(0.25)
            say(run.status_line())
            ok = report(run, console)
        else:
            while True:
                sys.stdout.write("\r" + run.status_line() + "   ")
                sys.stdout.flush()
                time.sleep(1)
    except KeyboardInterrupt:
        say("\nstopping...")
        ok = True
    finally:
        run.stop()
    say(f"stopped; nothing left running (workspace {workdir})")
    if not ok:
        raise SystemExit(1)


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def cloud_events(run: Demo) -> list[dict[str, Any]]:
    """Every event the cloud stored for the demo device, with its signed envelope."""
    base = run.urls["cloud"]
    with httpx.Client(base_url=base, timeout=30) as client:
        login = client.post(
            "/v1/auth/login", json={"username": "demo-viewer", "password": run.viewer_password}
        )
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        out: list[dict[str, Any]] = []
        while True:
            page = client.get(
                f"/v1/devices/{DEVICE}/events",
                params={"after": out[-1]["seq"] if out else 0, "limit": 1000, "envelopes": True},
                headers=headers,
            )
            page.raise_for_status()
            rows = page.json()
            if not rows:
                return out
            out.extend(rows)


def verify_envelopes(run: Demo, events: list[dict[str, Any]]) -> tuple[int, int]:
    """``dockgate verify`` over the cloud's envelopes against the fleet CA: (valid, total)."""
    bundle = run.root / "cloud" / "trust-bundle.json"
    run.stack.run("cloud trust-bundle", "cloud", "trust-bundle", "--config",
                  str(run.cloud_config), "-o", str(bundle))  # fmt: skip
    path = run.root / "cloud" / "events.json"
    path.write_text(json.dumps([{"envelope": e["envelope"]} for e in events]))
    import subprocess

    from edge.demo_stack import dockgate_argv

    result = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments, no shell
        dockgate_argv("verify", "--bundle", str(bundle), str(path)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    valid = sum(1 for line in result.stdout.splitlines() if line.endswith(": valid"))
    return valid, len(events)


__all__ = ["Demo", "Table", "cloud_events", "demo", "verify_envelopes"]
