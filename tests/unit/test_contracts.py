"""The wire contracts: import boundaries, error-code documentation, event hashing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from edge.contracts.errors import DESCRIPTIONS, ErrorCode
from edge.contracts.event import GENESIS_HASH, Event, event_hash

REPO = Path(__file__).resolve().parents[2]


def _imports(package: Path) -> set[tuple[Path, str]]:
    found: set[tuple[Path, str]] = set()
    for file in package.rglob("*.py"):
        tree = ast.parse(file.read_text(), filename=str(file))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((file, node.module))
            elif isinstance(node, ast.Import):
                found |= {(file, alias.name) for alias in node.names}
            elif (  # a module named in a string, for importlib: counts as an import too
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"edge(\.[a-z_]+)+", node.value)
            ):
                found.add((file, node.value))
    return found


def test_contracts_import_nothing_else_from_edge() -> None:
    for file, module in _imports(REPO / "edge" / "contracts"):
        if module.startswith("edge"):
            assert module.startswith("edge.contracts"), f"{file} imports {module}"


# the code grammar is shared like the contracts (the cloud's labeling validates typed codes with
# it), so it too may import nothing from edge but the contracts
SHARED = ("edge.contracts", "edge.codes")


def test_code_grammar_imports_only_contracts_from_edge() -> None:
    for file, module in _imports(REPO / "edge" / "codes"):
        if module.startswith("edge"):
            assert module.startswith(SHARED), f"{file} imports {module}"


# The one exception, by design: the cloud's training worker runs the trainers (PyTorch, the
# [train] extra), which live beside the models they train. Only the job runner may load them,
# lazily, so the API process never imports them.
TRAINING = {(REPO / "cloud" / "services" / "training.py", "edge.vision.learning")}


def test_cloud_ota_and_bridge_use_only_contracts_from_edge() -> None:
    for package in ("cloud", "firmware_bridge"):
        for file, module in _imports(REPO / package):
            if (file, module) in TRAINING:
                continue
            if module == "edge" or module.startswith("edge."):
                assert module.startswith(SHARED), f"{file} imports {module}"


def test_the_cloud_api_does_not_load_the_trainers() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cloud.app\n"
        "print(any(m.startswith(('edge.vision', 'torch')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_error_code_is_described_and_in_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for code in ErrorCode:
        assert DESCRIPTIONS.get(code), f"{code} has no description"
        assert f"`{code.value}`" in readme, f"{code} missing from README error table"


def test_event_hash_is_canonical() -> None:
    event = Event(
        id="0190b7c0-0000-7000-8000-000000000001",
        device_id="edge-01",
        seq=1,
        ts="2026-01-01T00:00:00.000Z",
        kind="receipt",
        actor="device:edge-01",
        payload={"b": 1, "a": "批号"},
        prev_hash=GENESIS_HASH,
    ).sealed()
    reordered = dict(reversed(list(event.body().items())))
    reordered["payload"] = {"a": "批号", "b": 1}
    assert event_hash(reordered) == event.hash
    assert Event.from_dict(event.to_dict()) == event
