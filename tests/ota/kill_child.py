"""Child process for the SIGKILL test: restore the active model, follow one cloud assignment
through the edge OTA agent (TUF refresh, resumable download, verification, load, self-test,
switch), print every event.

Every event goes to stdout on its own line, flushed, so the parent can SIGKILL this process right
after any chosen point (metadata, each downloaded chunk, verification, adoption, load, self-test,
persist, switch).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from edge.contracts.ota import Assignment, OtaDirective
from edge.vision.session import load_session
from ota.agent import Managed, OtaAgent
from ota.fetch import OtaClient
from ota.link import CloudLink
from ota.swap import SlotStore, Swapper
from tests.ota.models import known_answer_test


def emit(event: str) -> None:
    sys.stdout.write(event + "\n")
    sys.stdout.flush()


class NoSigner:
    """The directive is given on the command line: this child never talks to the cloud API."""

    device_id = "edge-kill"
    clock_offset = 0.0

    def sign_request(self, method: str, path: str, body: bytes) -> str:
        raise AssertionError("the SIGKILL child sends no cloud requests")


def follow(base_url: str, ota_dir: Path, assignment: Assignment, events: Any = None) -> Any:
    """Restore the slot state and follow ``assignment`` once; returns the model's state."""
    swap: Swapper[Any] = Swapper(
        SlotStore(ota_dir, "defect"),
        lambda p, sha, size: load_session(p, sha, size=size, threads=1),
        known_answer_test,
        events=events,
        max_unconfirmed_starts=1000,  # these restarts are the test's, not a crash loop
    )
    restored = swap.restore()
    if events is not None:
        events(f"restored {restored.version}")
    client = OtaClient(base_url, ota_dir, chunk_bytes=16 * 1024, events=events)
    link = CloudLink("http://127.0.0.1:9", NoSigner())
    managed: Managed[Any] = Managed(swap)
    agent: OtaAgent[Any] = OtaAgent(link, client, {"defect": managed}, dockgate_version="9.9.9")
    try:
        agent.apply(OtaDirective(device_id="edge-kill", assignments=[assignment], etag="kill"))
    finally:
        client.close()
        link.close()
    return managed


def main() -> int:
    base_url, ota_dir = sys.argv[1], Path(sys.argv[2])
    assignment = Assignment.model_validate_json(sys.argv[3])
    managed = follow(base_url, ota_dir, assignment, emit)
    emit(f"done {managed.running()} {managed.last_code}")
    return 0 if managed.last_code is None else 1


if __name__ == "__main__":
    sys.exit(main())
