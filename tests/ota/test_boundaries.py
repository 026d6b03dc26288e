"""``ota`` needs only ``edge.contracts`` from edge (the loader and preprocessing are injected)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ota_and_cloud_rollouts_import_only_contracts_from_edge() -> None:
    for package in (REPO / "ota", REPO / "cloud" / "rollouts"):
        for file in package.rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else []
                )
                for name in names:
                    if name == "edge" or name.startswith("edge."):
                        assert name.startswith("edge.contracts"), f"{file} imports {name}"
                    if package.name == "rollouts":
                        assert not name.startswith("ota"), f"{file} imports {name}"
