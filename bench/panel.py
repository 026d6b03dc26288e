"""Panel figures: page render times, live-stream latency and login cost, on a real uvicorn.

Prints medians and p95 with a same-run reference for each (a static file from the same server;
a SHA-256 of the same password). The machine is shared: read ratios, not absolutes.
Run: .venv/bin/python bench/panel.py
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from argon2 import PasswordHasher

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.panel.live import percentile
from edge.panel.server import uvicorn_config
from edge.panel.services import CARTON_TOPIC
from tests.panel.support import PASSWORD, carton, make_env, publish_history
from tests.support.net import free_port, wait_for_port


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def row(name: str, ms: list[float], ref: list[float] | None = None) -> None:
    med = statistics.median(ms)
    ratio = f"{med / statistics.median(ref):.1f}x" if ref else "-"
    print(f"| {name:<42} | {med:9.3f} | {percentile(ms, 95):9.3f} | {ratio:>9} | {len(ms):4d} |")


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    env = make_env(tmp)
    for i in range(40):  # a bigger stock table: 40 more batches
        env.ledger.receive("MILK-1L", f"L{i:04d}", 12, expiry="2027-01-01", location="A-01-01",
                           actor="user:bench")  # fmt: skip
    publish_history(env.bus)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(env.app, env.config, port=port))
    thread = threading.Thread(target=server.run, name="bench-panel")
    thread.start()
    wait_for_port(port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            import re

            token = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/login").text)
            assert token
            http.post("/login", data={"username": "op", "password": PASSWORD,
                                      "csrf_token": token.group(1)})  # fmt: skip
            print(f"| {'measure (ms)':<42} | {'median':>9} | {'p95':>9} | {'vs ref':>9} |    n |")
            print("| --- | ---: | ---: | ---: | ---: |")
            ref = timed(lambda: http.get("/static/panel.css"), 200)
            row("GET /static/panel.css (reference)", ref)
            for path in ("/live", "/stock", "/charts", "/qa", "/review", "/device"):
                row(f"GET {path}", timed(lambda p=path: http.get(p), 100), ref)
            row("SSE: bus.publish -> event at client", sse_latency(http, env, 100), None)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        env.ledger.close()
    prod = PasswordHasher()
    sha = timed(lambda: hashlib.sha256(PASSWORD.encode()).digest(), 200)
    stored = prod.hash(PASSWORD)
    row("SHA-256 of the password (reference)", sha)
    login = timed(lambda: prod.verify(stored, PASSWORD), 10)
    row("argon2id verify, production cost (login)", login, sha)


def sse_latency(http: httpx.Client, env, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out: list[float] = []
    sent: dict[str, float] = {}
    import re

    after = re.search(r'data-stream="/live/stream\?after=(\d+)"', http.get("/live").text)
    assert after
    with http.stream("GET", "/live/stream", params={"after": after.group(1)}) as response:
        lines = response.iter_lines()

        def publisher() -> None:
            for i in range(n):
                time.sleep(0.05)
                c = carton(5000 + i, crop=None)
                sent[c.carton_id] = time.perf_counter()
                env.bus.publish(CARTON_TOPIC, c)

        t = threading.Thread(target=publisher)
        t.start()
        for line in lines:
            if line.startswith("data: "):
                cid = json.loads(line[6:])["id"]
                out.append((time.perf_counter() - sent[cid]) * 1000)
                if len(out) == n:
                    break
        t.join()
    return out


if __name__ == "__main__":
    main()
