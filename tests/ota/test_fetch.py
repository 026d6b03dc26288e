"""Edge updater: every TUF refusal maps to its code; downloads resume and are verified first."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from edge.contracts.errors import DockgateError, ErrorCode
from ota.fetch import OtaClient, install_root
from ota.release import sha256_file
from tests.ota.conftest import Fleet


def _code(excinfo: pytest.ExceptionInfo[DockgateError]) -> ErrorCode:
    return excinfo.value.code


def _served_file(fleet: Fleet, version: str) -> Path:
    sha = fleet.repo.releases()[f"defect/{version}/defect.onnx"]["sha256"]
    return fleet.repo.targets_dir / "defect" / version / f"{sha}.defect.onnx"


def test_fetch_downloads_and_verifies_the_active_release(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    model = fleet.device().fetch("defect")
    assert model.version == "1.0.0"
    assert sha256_file(model.path) == model.sha256 == sha256_file(fleet.models["1.0.0"])
    assert model.custom["inputs"][0]["name"] == "x"
    fleet.release("1.1.0")
    assert fleet.device().fetch("defect").version == "1.1.0"


def test_a_tampered_file_is_refused_and_never_staged(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    served = _served_file(fleet, "1.0.0")
    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, one bit pattern changed
    served.write_bytes(bytes(data))
    device = fleet.device()
    with pytest.raises(DockgateError) as err:
        device.fetch("defect")
    assert _code(err) is ErrorCode.OTA_HASH_MISMATCH
    assert not list(device.staging_dir.glob("*"))


def test_a_longer_file_is_cut_off_at_the_signed_length(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    served = _served_file(fleet, "1.0.0")
    served.write_bytes(served.read_bytes() + b"\0" * 300_000)
    device = fleet.device()
    with pytest.raises(DockgateError) as err:
        device.fetch("defect")
    assert _code(err) is ErrorCode.OTA_HASH_MISMATCH
    assert not list(device.staging_dir.glob("*.onnx"))


def test_metadata_not_signed_by_the_trusted_key_is_refused(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    version = fleet.repo.versions()["targets"]
    path = fleet.repo.metadata_dir / f"{version}.targets.json"
    doc = json.loads(path.read_text())
    doc["signed"]["targets"]["defect/1.0.0/defect.onnx"]["custom"]["version"] = "6.6.6"
    path.write_text(json.dumps(doc))
    with pytest.raises(DockgateError) as err:
        fleet.device().fetch("defect")
    assert _code(err) is ErrorCode.OTA_SIGNATURE_INVALID


def test_expired_metadata_is_refused_with_its_code(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    device = fleet.device()
    device.fetch("defect")
    fleet.repo.refresh(timestamp_expiry=timedelta(seconds=-60))
    with pytest.raises(DockgateError) as err:
        fleet.device().refresh()
    assert _code(err) is ErrorCode.OTA_METADATA_EXPIRED
    fleet.repo.refresh()  # the release server re-signs: the device proceeds again
    fleet.device().refresh()


def test_replayed_older_timestamp_is_refused(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    old = (fleet.repo.metadata_dir / "timestamp.json").read_bytes()
    fleet.repo.refresh()
    fleet.device().refresh()  # the device now trusts the newer timestamp
    (fleet.repo.metadata_dir / "timestamp.json").write_bytes(old)
    with pytest.raises(DockgateError) as err:
        fleet.device().refresh()
    assert _code(err) is ErrorCode.OTA_ROLLBACK_REFUSED


def test_replayed_older_release_is_refused(fleet: Fleet) -> None:
    """A mirror serving yesterday's repository (pointing at 1.0.0) after 1.1.0 was trusted."""
    fleet.release("1.0.0")
    snapshot = fleet.tmp / "old-metadata"
    shutil.copytree(fleet.repo.metadata_dir, snapshot)
    fleet.release("1.1.0")
    assert fleet.device().fetch("defect").version == "1.1.0"
    shutil.rmtree(fleet.repo.metadata_dir)
    shutil.copytree(snapshot, fleet.repo.metadata_dir)
    with pytest.raises(DockgateError) as err:
        fleet.device().fetch("defect")
    assert _code(err) is ErrorCode.OTA_ROLLBACK_REFUSED


def test_a_deliberate_rollback_is_accepted_as_a_new_instruction(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    fleet.release("1.1.0")
    assert fleet.device().fetch("defect").version == "1.1.0"
    fleet.repo.activate("defect", "1.0.0")
    assert fleet.device().fetch("defect").version == "1.0.0"


class _LinkDropError(Exception):
    pass


def test_an_interrupted_download_resumes_with_a_range_request(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    size = fleet.models["1.0.0"].stat().st_size

    def cut(event: str) -> None:
        if event.startswith("download ") and int(event.split()[1].split("/")[0]) >= size // 2:
            raise _LinkDropError  # the link drops half way

    first = fleet.device(events=cut, chunk_bytes=16 * 1024)
    with pytest.raises(_LinkDropError):
        first.fetch("defect")
    parts = list(first.staging_dir.glob("*.part"))
    assert len(parts) == 1
    have = parts[0].stat().st_size
    assert size // 2 <= have < size
    fleet.log.clear()
    model = fleet.device().fetch("defect")
    assert sha256_file(model.path) == sha256_file(fleet.models["1.0.0"])
    ranges = [r for p, r in fleet.log if p.endswith(".defect.onnx")]
    assert ranges == [f"bytes={have}-"]


def test_no_trusted_root_means_no_update(tmp_path: Path) -> None:
    client = OtaClient("http://127.0.0.1:9/ota", tmp_path / "ota")
    with pytest.raises(DockgateError) as err:
        client.refresh()
    assert _code(err) is ErrorCode.OTA_NOT_INSTALLED


def test_install_root_refuses_unsigned_or_a_second_root(fleet: Fleet, tmp_path: Path) -> None:
    root = (fleet.repo.metadata_dir / "1.root.json").read_bytes()
    doc = json.loads(root)
    doc["signed"]["expires"] = "2099-01-01T00:00:00Z"
    with pytest.raises(DockgateError) as err:
        install_root(tmp_path / "a", json.dumps(doc).encode())
    assert _code(err) is ErrorCode.OTA_SIGNATURE_INVALID
    install_root(tmp_path / "b", root)
    with pytest.raises(DockgateError):
        install_root(tmp_path / "b", root)


def test_edge_commands_trust_fetch_and_status(fleet: Fleet, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from edge.cli import cli

    fleet.release("1.0.0")
    ota_dir = tmp_path / "node" / "ota"
    root = fleet.repo.metadata_dir / "1.root.json"
    runner = CliRunner()
    trusted = runner.invoke(cli, ["ota", "trust", "--ota-dir", str(ota_dir), "--root", str(root)])
    assert trusted.exit_code == 0, trusted.output
    got = runner.invoke(cli, ["ota", "fetch", "--ota-dir", str(ota_dir), "--url", fleet.base_url])
    assert got.exit_code == 0, got.output
    out = json.loads(got.output)
    assert out["version"] == "1.0.0" and Path(out["path"]).is_file()
    status = runner.invoke(cli, ["ota", "status", "--ota-dir", str(ota_dir)])
    assert status.exit_code == 0 and json.loads(status.output) == {}


def test_an_unreachable_server_is_a_download_failure_not_a_crash(
    fleet: Fleet, tmp_path: Path
) -> None:
    from tests.support.net import free_port

    fleet.release("1.0.0")
    ota_dir = tmp_path / "node" / "ota"
    install_root(ota_dir, (fleet.repo.metadata_dir / "1.root.json").read_bytes())
    with OtaClient(f"http://127.0.0.1:{free_port()}/ota", ota_dir, timeout_s=2) as client:
        with pytest.raises(DockgateError) as err:
            client.refresh()
    assert _code(err) is ErrorCode.OTA_DOWNLOAD_FAILED
