"""Enrollment over real HTTP, key file modes, one-time tokens, and offline 'dockgate verify'."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.config import CloudConfig
from cloud.deps import Services
from cloud.services.ca import init_ca
from edge.contracts.errors import DockgateError, ErrorCode
from edge.trust.enroll import enroll
from edge.trust.keys import load_identity
from tests.sync.procs import CloudProcess, dockgate
from tests.trust.pki import make_events, signed


@pytest.fixture
def served(tmp_path: Path) -> Iterator[CloudProcess]:
    dockgate("cloud", "ca", "init", "--dir", str(tmp_path / "ca"), "--org", "org-01")
    cloud = CloudProcess(tmp_path, f"sqlite:///{tmp_path}/cloud.db", tmp_path / "ca" / "issuing")
    cloud.start()
    try:
        yield cloud
    finally:
        cloud.stop()


def _token(cloud: CloudProcess, **kw: str) -> str:
    args = [
        "cloud",
        "token",
        "create",
        "--config",
        str(cloud.config),
        "--org",
        "org-01",
        "--site",
        kw.get("site", "site-01"),
    ]
    if "device" in kw:
        args += ["--device", kw["device"]]
    if "ttl" in kw:
        args += ["--ttl-hours", kw["ttl"]]
    return dockgate(*args).stdout.strip()


def test_ca_init_modes_and_refuses_overwrite(tmp_path: Path) -> None:
    init_ca(tmp_path / "ca", "org-01")
    for key in ("root/root.key", "issuing/issuing.key"):
        assert stat.S_IMODE(os.stat(tmp_path / "ca" / key).st_mode) == 0o600
    with pytest.raises(DockgateError):
        init_ca(tmp_path / "ca", "org-01")
    svc = Services.from_config(
        CloudConfig(
            database_url=f"sqlite:///{tmp_path}/c.db", issuing_dir=tmp_path / "ca" / "issuing"
        )
    )
    try:
        assert svc.issuer is not None  # the service loads the issuing CA, never root/
        assert not (tmp_path / "ca" / "issuing" / "root.key").exists()
    finally:
        svc.close()


def test_enroll_cli_then_verify_cli(served: CloudProcess, tmp_path: Path) -> None:
    edge_toml = tmp_path / "edge.toml"
    edge_toml.write_text(f'[device]\nid = "edge-07"\ndata_dir = "{tmp_path / "edge"}"\n')
    out = dockgate(
        "edge",
        "enroll",
        "--config",
        str(edge_toml),
        "--cloud",
        served.url,
        "--token",
        _token(served),
    )
    assert "enrolled edge-07" in out.stdout
    trust = tmp_path / "edge" / "trust"
    assert stat.S_IMODE(os.stat(trust / "device.key").st_mode) == 0o600
    ident = load_identity(trust)
    status = dockgate("edge", "status", "--config", str(edge_toml), "--json")
    assert json.loads(status.stdout)["enrolled"] is True
    # a few ledger events, pushed by 'dockgate edge sync --once'
    from edge.ledger import Ledger
    from edge.trust.signer import DeviceSigner

    with Ledger.open(tmp_path / "edge" / "ledger.db", "edge-07", signer=DeviceSigner(ident)) as led:
        led.add_sku("SKU-A", gtin="4006381333931", actor="user:lin")
        head = led.head()[0]
    with edge_toml.open("a") as fh:
        fh.write(f'[sync]\ncloud_url = "{served.url}"\n')
    pushed = dockgate("edge", "sync", "--config", str(edge_toml), "--once")
    assert f"sent {head} events" in pushed.stdout
    status = json.loads(dockgate("edge", "status", "--config", str(edge_toml), "--json").stdout)
    assert status["pending"] == 0 and status["cloud_hwm"] == head and status["last_success"]

    events = make_events("edge-07", 3)
    envs = signed(ident, events)
    bundle = tmp_path / "bundle.json"
    dockgate("cloud", "trust-bundle", "--config", str(served.config), "-o", str(bundle))
    ok = dockgate("verify", "--bundle", str(bundle), "-", stdin="\n".join(envs))
    assert ok.stdout.splitlines() == ["1: valid", "2: valid", "3: valid"]

    h, p, s = envs[1].split(".")
    tampered = f"{h}.{p[:-2]}{'A' if p[-2] != 'A' else 'B'}{p[-1]}.{s}"
    broken = signed(
        ident,
        [
            make_events("edge-07", 3)[2]
            .__class__(**{**events[2].body(), "prev_hash": "1" * 64})
            .sealed()
        ],
    )[0]
    bad = dockgate(
        "verify",
        "--trust-dir",
        str(trust),
        "-",
        check=False,
        stdin="\n".join([envs[0], envs[1], broken, tampered]),
    )
    lines = bad.stdout.splitlines()
    assert bad.returncode == 1
    assert lines[:2] == ["1: valid", "2: valid"]
    assert lines[2].startswith("3: CHAIN_BROKEN") and "broken chain link" in lines[2]
    assert lines[3].startswith("4: SIG_INVALID")

    dockgate("cloud", "device", "revoke", "--config", str(served.config), "edge-07")
    dockgate("cloud", "trust-bundle", "--config", str(served.config), "-o", str(bundle))
    rev = dockgate("verify", "--bundle", str(bundle), "-", check=False, stdin="\n".join(envs))
    assert rev.returncode == 1 and "DEVICE_REVOKED" in rev.stdout  # nothing was synced before


def test_tokens_are_one_time_expire_and_pin(served: CloudProcess, tmp_path: Path) -> None:
    token = _token(served)
    enroll(tmp_path / "a", served.url, token, "edge-01")
    with pytest.raises(DockgateError) as reused:
        enroll(tmp_path / "b", served.url, token, "edge-02")
    assert reused.value.code is ErrorCode.TOKEN_INVALID and "used" in reused.value.message
    import datetime as dt

    from cloud.config import load_cloud_config
    from cloud.services.registry import create_token

    svc = Services.from_config(load_cloud_config(served.config), run_migrations=False)
    try:
        with svc.sessions.begin() as s:
            expired = create_token(s, "test", "org-01", "site-01", None, dt.timedelta(seconds=-1))
    finally:
        svc.close()
    with pytest.raises(DockgateError) as old:
        enroll(tmp_path / "c", served.url, expired, "edge-03")
    assert old.value.code is ErrorCode.TOKEN_INVALID and "expired" in old.value.message
    pinned = _token(served, device="edge-09")
    with pytest.raises(DockgateError) as wrong:
        enroll(tmp_path / "d", served.url, pinned, "edge-04")
    assert wrong.value.code is ErrorCode.TOKEN_INVALID
    with pytest.raises(DockgateError) as bogus:
        enroll(tmp_path / "e", served.url, "dgt_not-a-real-token", "edge-05")
    assert bogus.value.code is ErrorCode.TOKEN_INVALID


def test_verify_reports_unknown_and_expired(tmp_path: Path) -> None:
    import datetime as dt

    from edge.trust.verify_cli import Trust, check
    from tests.trust.pki import make_ca, make_device

    issuer = make_ca(tmp_path)
    a = make_device(issuer, "edge-01")
    stranger = make_device(make_ca(tmp_path / "x"), "edge-01")
    trust = Trust([issuer.root], [issuer.cert], {})
    from edge.contracts.envelope import DeviceKey

    trust.devices[DeviceKey.from_cert(a.cert).fingerprint] = a.cert
    assert check(signed(stranger, make_events("edge-01", 1))[0], trust, {}).startswith(
        "DEVICE_UNKNOWN"
    )
    old = make_events("edge-01", 1)[0]
    from edge.contracts.event import Event

    ancient = Event(**{**old.body(), "ts": "2001-01-01T00:00:00.000Z"}).sealed()
    assert check(signed(a, [ancient])[0], trust, {}).startswith("CERT_EXPIRED")
    # a certificate of another fleet smuggled into the bundle fails the chain
    trust.devices[DeviceKey.from_cert(stranger.cert).fingerprint] = stranger.cert
    assert check(signed(stranger, make_events("edge-01", 1))[0], trust, {}).startswith(
        "CERT_CHAIN_INVALID"
    )
    assert dt.datetime.now(dt.UTC) < a.cert.not_valid_after_utc


def test_verify_revoked_device_keeps_what_it_sent_before(tmp_path: Path) -> None:
    from edge.contracts.envelope import DeviceKey
    from edge.trust.verify_cli import Trust, check
    from tests.trust.pki import make_ca, make_device

    issuer = make_ca(tmp_path)
    a = make_device(issuer, "edge-01")
    fp = DeviceKey.from_cert(a.cert).fingerprint
    trust = Trust([issuer.root], [issuer.cert], {fp: a.cert}, revoked={"edge-01": 2})
    heads: dict[str, tuple[int, str]] = {}
    verdicts = [check(t, trust, heads) for t in signed(a, make_events("edge-01", 3))]
    assert verdicts[:2] == ["valid", "valid"]
    assert verdicts[2].startswith("DEVICE_REVOKED: revoked certificate")
