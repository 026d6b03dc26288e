"""The chaos run's edge node as its own process: ``dockgate edge run`` on the demo's looping video.

``python tests/chaos/edge_proc.py CONFIG VIDEO_DIR FPS``: the node of :mod:`edge.runtime.node`
with the demo's paced camera (:class:`edge.demo.PacedSource`, looping) and the delivery's ASN,
the way ``dockgate demo`` runs it, but in a child process the harness can SIGKILL. Its config has
no ``sync.cloud_url``: the sync agent runs as a separate process (``dockgate edge sync``).
SIGUSR1 stops the camera (the end of the shift); SIGTERM stops the node cleanly.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

from edge.config import load_edge_config
from edge.demo import PacedSource
from edge.runtime.node import EdgeNode
from edge.vision.ocr.reader import ASN


def main(config_path: str, video_dir: str, fps: str) -> None:
    config = load_edge_config(Path(config_path))
    rows = json.loads((Path(video_dir) / "asn.json").read_text())
    asn = [ASN(gtin=r["gtin"], lot=r["lot"], expiry=r["expiry"]) for r in rows]
    source = PacedSource(Path(video_dir) / "conveyor.avi", float(fps), loop=True)
    node = EdgeNode(config, source=source, expect=lambda: asn)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: source.close())  # the line stops: no new cartons
    node.start()
    print("edge node ready", flush=True)
    try:
        while not stop.wait(5):
            print(node.status_line(), flush=True)
    finally:
        node.stop()


if __name__ == "__main__":
    main(*sys.argv[1:4])
