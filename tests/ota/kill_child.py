"""Child process for the SIGKILL test: restore the active model, run one update, print events.

Every event goes to stdout on its own line, flushed, so the parent can SIGKILL this process right
after any chosen point (metadata, each downloaded chunk, verification, adoption, load, self-test,
persist, switch).
"""

from __future__ import annotations

import sys
from pathlib import Path

from edge.vision.session import load_session
from ota.fetch import OtaClient
from ota.swap import SlotStore, Swapper
from ota.updater import Updater
from tests.ota.models import known_answer_test


def emit(event: str) -> None:
    sys.stdout.write(event + "\n")
    sys.stdout.flush()


def main() -> int:
    base_url, ota_dir = sys.argv[1], Path(sys.argv[2])
    swap = Swapper(
        SlotStore(ota_dir, "defect"),
        lambda p, sha, size: load_session(p, sha, size=size, threads=1),
        known_answer_test,
        events=emit,
    )
    emit(f"restored {swap.restore().version}")
    client = OtaClient(base_url, ota_dir, chunk_bytes=16 * 1024, events=emit)
    outcome = Updater(client, swap, "defect").update_once()
    emit(f"done {outcome.running} {outcome.code}")
    return 0 if outcome.code is None else 1


if __name__ == "__main__":
    sys.exit(main())
