"""OTA fixtures: a signed release repository with versions A and B, served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ota.fetch import OtaClient, install_root
from ota.release import describe_model, sha256_file
from ota.repo import Repository
from tests.ota.models import make_model
from tests.ota.server import serve


@dataclass
class Fleet:
    repo: Repository
    base_url: str
    log: list[tuple[str, str | None]]
    models: dict[str, Path]
    tmp: Path

    def release(self, version: str, *, activate: bool = True) -> str:
        model = self.models[version]
        info = describe_model(
            model, "defect", version, sha256=sha256_file(model), min_dockgate="0.1.0"
        )
        return self.repo.release(model, info, activate=activate)

    def device(self, name: str = "edge-01", **kwargs: object) -> OtaClient:
        ota_dir = self.tmp / name / "ota"
        if not (ota_dir / "metadata" / "root.json").exists():
            install_root(ota_dir, (self.repo.metadata_dir / "1.root.json").read_bytes())
        return OtaClient(self.base_url, ota_dir, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def fleet(tmp_path: Path, port: int) -> Iterator[Fleet]:
    repo = Repository.init(tmp_path / "repo", tmp_path / "offline" / "root.key")
    models = {
        "1.0.0": make_model(tmp_path / "build" / "a" / "defect.onnx", 1.0, pad_kb=256),
        "1.1.0": make_model(tmp_path / "build" / "b" / "defect.onnx", 2.0, pad_kb=256),
        "9.9.9-bad": make_model(tmp_path / "build" / "bad" / "defect.onnx", 3.0, perm=(1, 0, 2, 3)),
    }
    with serve(repo.dir, port) as log:
        yield Fleet(repo, f"http://127.0.0.1:{port}/ota", log, models, tmp_path)
