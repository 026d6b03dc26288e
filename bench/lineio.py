"""Line I/O figures: PLC mailbox handshake round trip and verified output writes.

Runs ``dockgate sim plc`` (the pymodbus-server PLC simulator, 5 ms scan cycle, no carton flow)
as a separate process and the edge's ModbusLineIO in this one, over Modbus TCP on 127.0.0.1.
Prints, as p50/p95/max in milliseconds:

* ``send_sort_command`` from the call to the confirmed echo (two register writes, then polling
  the acknowledged sequence until the PLC's next scan cycle has echoed it);
* ``set_stack_light``: five contiguous coils in one write-multiple request, then a read-back;
* same-run reference: one bare ``read_input_registers`` round trip on the same connection, and
  the ratios of the two figures above to it.

The machine is shared (2 cores, other work running): timings are noisy, medians are the figure
to quote. A real PLC adds its own scan cycle (typically 5-20 ms) to the handshake.

    .venv/bin/python bench/lineio.py [--count N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from firmware_bridge.modbus.config import ModbusTcpLineConfig  # noqa: E402
from firmware_bridge.modbus.plc import ModbusLineIO  # noqa: E402
from firmware_bridge.ports import StackLight  # noqa: E402
from tests.support.net import free_port, wait_for_port  # noqa: E402


def summary(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000, ordered[-1] * 1000


async def measure(port: int, count: int) -> dict[str, list[float]]:
    io = ModbusLineIO(ModbusTcpLineConfig(host="127.0.0.1", port=port), lambda e: None)
    await io.start()
    try:
        if not await io.wait_connected(10):
            raise SystemExit("PLC simulator did not answer")
        out: dict[str, list[float]] = {"read": [], "handshake": [], "stack": []}
        lights = [StackLight.for_condition(c) for c in ("normal", "abnormal")]
        for i in range(count + 20):  # first 20 rounds warm up
            t0 = time.perf_counter()
            await io._call("read_input_registers", 0, count=1)  # reference round trip
            t1 = time.perf_counter()
            ack = await io.send_sort_command(i + 1, 1 + i % 3)
            t2 = time.perf_counter()
            await io.set_stack_light(lights[i % 2])
            t3 = time.perf_counter()
            if not ack.confirmed:
                raise SystemExit(f"handshake failed: {ack}")
            if i >= 20:
                out["read"].append(t1 - t0)
                out["handshake"].append(t2 - t1)
                out["stack"].append(t3 - t2)
        return out
    finally:
        await io.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="measured rounds")
    args = parser.parse_args()
    port = free_port()
    sim = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from edge.cli import main; main()",
            "sim",
            "plc",
            "--port",
            str(port),
            "--rate",
            "0",
            "--edge-heartbeat-timeout",
            "0",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=30)
        samples = asyncio.run(measure(port, args.count))
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    ref = statistics.median(samples["read"])
    print(f"line I/O bench: {args.count} rounds, Modbus TCP to a separate simulator process")
    print(f"{'figure':<42} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'p50/ref':>8}")
    names = {
        "read": "reference: one read_input_registers",
        "handshake": "mailbox handshake (write, bump, echo)",
        "stack": "stack light (5 coils: one FC15 + read-back)",
    }
    for key, name in names.items():
        p50, p95, worst = summary(samples[key])
        ratio = statistics.median(samples[key]) / ref
        print(f"{name:<42} {p50:>8.2f} {p95:>8.2f} {worst:>8.2f} {ratio:>8.1f}")


if __name__ == "__main__":
    main()
