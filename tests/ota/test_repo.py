"""Release repository side: keys, signed metadata, releases, rollbacks as new instructions."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from tuf.api.metadata import Metadata, Root

from edge.cli import cli
from edge.contracts.errors import DockgateError, ErrorCode
from ota.repo import Repository
from tests.ota.conftest import Fleet
from tests.ota.models import make_model

CARD = """# Defect model

Held-out (the figure that matters):

| metric | value |
|---|---|
| frames | 1000 |
| recall of defective | 0.5700 |
"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_init_writes_private_keys_0600_root_apart_and_valid_metadata(tmp_path: Path) -> None:
    root_key = tmp_path / "offline" / "root.key"
    result = CliRunner().invoke(
        cli, ["ota", "keys", "init", "--dir", str(tmp_path / "repo"), "--root-key", str(root_key)]
    )
    assert result.exit_code == 0, result.output
    assert "move it off this server" in result.output
    repo = Repository(tmp_path / "repo")
    for role in ("targets", "snapshot", "timestamp"):
        assert _mode(repo.key_path(role)) == 0o600
    assert _mode(root_key) == 0o600
    assert not (repo.dir / "keys" / "root.key").exists()  # the root key is not among online keys
    root = Metadata[Root].from_file(str(repo.metadata_dir / "root.json"))
    for role in ("root", "targets", "snapshot", "timestamp"):
        md = Metadata.from_file(str(repo.metadata_dir / f"{role}.json"))
        root.signed.verify_delegate(role, md.signed_bytes, md.signatures)
        assert md.signed.expires > datetime.now(UTC)
    timestamp = repo.load("timestamp").signed
    assert timestamp.expires <= datetime.now(UTC) + timedelta(hours=24)
    # Keys are distinct per role (no shared key between offline root and online roles).
    assert len({tuple(r.keyids) for r in root.signed.roles.values()}) == 4
    again = CliRunner().invoke(
        cli, ["ota", "keys", "init", "--dir", str(tmp_path / "repo"), "--root-key", str(root_key)]
    )
    assert again.exit_code != 0


def test_release_signs_custom_metadata_from_the_onnx_file_and_its_card(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m" / "defect.onnx", 1.0)
    (model.parent / "MODEL_CARD.md").write_text(CARD)
    runner = CliRunner()
    repo_dir = tmp_path / "repo"
    assert runner.invoke(cli, ["ota", "keys", "init", "--dir", str(repo_dir)]).exit_code == 0
    args = ["ota", "release", "--dir", str(repo_dir), "--model", str(model)]
    result = runner.invoke(cli, [*args, "--name", "defect", "--version", "1.3.0"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["target"] == "defect/1.3.0/defect.onnx"
    assert out["targets"] == 2 and out["snapshot"] == 2 and out["timestamp"] == 2
    custom = Repository(repo_dir).releases()["defect/1.3.0/defect.onnx"]
    assert custom["name"] == "defect" and custom["version"] == "1.3.0"
    assert custom["size"] == model.stat().st_size and len(custom["sha256"]) == 64
    assert custom["inputs"] == [{"name": "x", "type": "tensor(float)", "shape": ["batch", 4]}]
    assert [o["name"] for o in custom["outputs"]] == ["logits", "tag"]
    assert custom["metrics"] == {"held-out": {"frames": "1000", "recall of defective": "0.5700"}}
    assert custom["min_dockgate"]
    pointer = Repository(repo_dir).releases()["defect/active.json"]["active"]
    assert pointer == {"name": "defect", "version": "1.3.0", "target": "defect/1.3.0/defect.onnx"}


def test_versions_only_go_up_and_a_rollback_is_a_new_instruction(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    before = fleet.repo.versions()
    fleet.release("1.1.0")
    mid = fleet.repo.versions()
    fleet.repo.activate("defect", "1.0.0")
    after = fleet.repo.versions()
    for role in ("targets", "snapshot", "timestamp"):
        assert before[role] < mid[role] < after[role]
    assert fleet.repo.releases()["defect/active.json"]["active"]["version"] == "1.0.0"
    with pytest.raises(DockgateError) as err:
        fleet.repo.activate("defect", "0.0.1")
    assert err.value.code is ErrorCode.CONFIG_INVALID


def test_a_released_version_cannot_be_replaced_by_other_bytes(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    fleet.models["1.0.0"] = fleet.models["1.1.0"]
    with pytest.raises(DockgateError, match="already released"):
        fleet.release("1.0.0")


def test_release_refuses_a_file_that_is_not_onnx(tmp_path: Path) -> None:
    Repository.init(tmp_path / "repo", tmp_path / "root.key")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    args = ["ota", "release", "--dir", str(tmp_path / "repo"), "--model", str(junk)]
    result = CliRunner().invoke(cli, [*args, "--name", "defect", "--version", "1"])
    assert isinstance(result.exception, DockgateError)
    assert result.exception.code is ErrorCode.MODEL_INVALID


def test_router_serves_metadata_and_ranges_but_never_keys(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    custom = fleet.repo.releases()["defect/1.0.0/defect.onnx"]
    url = f"{fleet.base_url}/targets/defect/1.0.0/{custom['sha256']}.defect.onnx"
    with httpx.Client() as client:
        assert client.get(f"{fleet.base_url}/metadata/timestamp.json").status_code == 200
        assert client.get(f"{fleet.base_url}/metadata/1.root.json").status_code == 200
        part = client.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and len(part.content) == 100
        assert part.content == fleet.models["1.0.0"].read_bytes()[100:200]
        for bad in ("/metadata/..%2Fkeys%2Ftimestamp.key", "/targets/../keys/targets.key"):
            assert client.get(fleet.base_url + bad).status_code == 404
        traversal = client.get(f"{fleet.base_url}/targets/%2E%2E/keys/targets.key")
        assert traversal.status_code == 400 and traversal.json()["code"] == "PATH_INVALID"
