"""The [agv] config section: the commented example is valid, bad values are one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge.config import load_edge_config
from edge.contracts.errors import DockgateError, ErrorCode

REPO = Path(__file__).resolve().parents[2]


def _uncommented_example() -> str:
    out, in_agv = [], False
    for line in (REPO / "fixtures/configs/edge.example.toml").read_text().splitlines():
        if line.startswith("# [agv]"):
            in_agv = True
        elif line.startswith("["):  # the next section (another area's)
            in_agv = False
        if in_agv and re.match(r"^# ([a-z_]+ = |\[agv\])", line):
            line = line[2:]
        out.append(line)
    return "\n".join(out) + "\n"


def test_example_agv_section_uncommented_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(_uncommented_example())
    config = load_edge_config(path)
    assert config.agv.interface_name == "uagv" and config.agv.battery_threshold == 30
    assert config.agv.sitemap == Path("fixtures/agv/sitemap.toml")
    assert config.agv.resolved_db_path(config.device.data_dir).name == "dispatch.db"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("[agv]\nbattery_threshold = 130\n", "agv.battery_threshold"),
        ('[agv]\ninterface_name = "uagv/evil"\n', "agv.interface_name"),
        ("[agv]\nbroker_port = 0\n", "agv.broker_port"),
        ("[agv]\npassword = 'x'\n", "agv.password"),
    ],
)
def test_bad_agv_values_are_one_line_errors(tmp_path: Path, body: str, key: str) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(body)
    with pytest.raises(DockgateError) as err:
        load_edge_config(path)
    assert err.value.code is ErrorCode.CONFIG_INVALID
    assert key in str(err.value) and "\n" not in str(err.value)


def test_password_comes_from_a_file_not_the_config(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt.password"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    path = tmp_path / "edge.toml"
    path.write_text(f'[agv]\nusername = "dockgate"\npassword_file = "{secret}"\n')
    config = load_edge_config(path)
    assert config.agv.read_password() == "s3cret"
    assert "s3cret" not in repr(config)
