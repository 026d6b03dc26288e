"""Child process of ``test_model_fuzz.py``: load mutated model files the way the node and the
release tool do, one JSON line per attempt (a line "start" goes out first, so a crash names the
mutation that caused it). ``python model_fuzz_child.py MODEL WORKDIR COUNT SEED``."""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from pathlib import Path

from edge.contracts.errors import DockgateError
from edge.vision.defects.model import DefectModel
from edge.vision.session import load_session
from ota.release import onnx_signature


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(["truncate", "flip", "span", "random", "empty", "zeros", "concat"])
    n = len(data)
    if kind == "truncate":
        cut = rng.randrange(0, n)
        return f"truncate@{cut}", data[:cut]
    if kind == "flip":
        out = bytearray(data)
        spots = [rng.randrange(n) for _ in range(rng.randint(1, 64))]
        for i in spots:
            out[i] ^= 1 << rng.randrange(8)
        return f"flip x{len(spots)}", bytes(out)
    if kind == "span":
        start, size = rng.randrange(n), rng.randint(1, 4096)
        return f"span@{start}+{size}", data[:start] + rng.randbytes(size) + data[start + size :]
    if kind == "random":
        size = rng.choice([1, 7, 100, 4096, 65536])
        return f"random {size}", rng.randbytes(size)
    if kind == "empty":
        return "empty", b""
    if kind == "zeros":
        start = rng.randrange(n)
        return f"zeros@{start}", data[:start] + bytes(min(4096, n - start)) + data[start + 4096 :]
    return "concat", data + data[: rng.randrange(n)]


def outcome(fn: object) -> str:
    try:
        fn()  # type: ignore[operator]
    except DockgateError as exc:
        return exc.code.value
    except Exception as exc:
        return f"EXC:{type(exc).__name__}:{str(exc)[:120]}"
    return "ok"


def main(model: str, workdir: str, count: str, seed: str) -> None:
    data = Path(model).read_bytes()
    rng = random.Random(int(seed))
    path = Path(workdir) / "mutated.onnx"
    for i in range(int(count)):
        desc, blob = mutate(data, rng)
        path.write_bytes(blob)
        sha = hashlib.sha256(blob).hexdigest()
        print(json.dumps({"i": i, "start": desc}), flush=True)
        t0 = time.perf_counter()
        row = {
            "i": i,
            "mutation": desc,
            "session": outcome(lambda: load_session(path, sha, threads=1)),  # noqa: B023
            "model": outcome(lambda: DefectModel.load(path=path, sha256=sha, threads=1)),  # noqa: B023
            "release": outcome(lambda: onnx_signature(path)),
            "wrong_sha": outcome(lambda: load_session(path, "0" * 64, threads=1)),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
