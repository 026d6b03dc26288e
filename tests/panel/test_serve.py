"""'dockgate edge panel' serves for real; the [panel] config section validates strictly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from edge.config import load_edge_config
from edge.contracts.errors import DockgateError
from edge.panel.services import CARTON_TOPIC
from tests.panel.conftest import Served
from tests.panel.support import PASSWORD, carton
from tests.support.net import wait_for_port

REPO = Path(__file__).resolve().parents[2]


def test_example_config_has_a_panel_section() -> None:
    cfg = load_edge_config(REPO / "fixtures" / "configs" / "edge.example.toml")
    assert cfg.panel.language == "zh-CN" and cfg.panel.port == 8080


def test_bad_panel_values_are_one_line_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    for body, needle in (
        ("[panel]\nport = 0\n", "panel.port"),
        ('[panel]\nlanguage = "fr"\n', "panel.language"),
        ('[panel]\ntls_cert = "a.pem"\n', "tls_key must be set together"),
        ("[panel]\nsession_idle_minutes = 0\n", "panel.session_idle_minutes"),
    ):
        bad.write_text(body)
        with pytest.raises(DockgateError) as err:
            load_edge_config(bad)
        assert needle in err.value.message and "\n" not in err.value.message


@pytest.mark.slow
def test_dockgate_edge_panel_serves_the_login_page(tmp_path: Path, port: int) -> None:
    cfg = tmp_path / "edge.toml"
    cfg.write_text(f'[device]\ndata_dir = "{tmp_path / "data"}"\n[panel]\nport = {port}\n')
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from edge.cli import main; main()",
            "edge",
            "panel",
            "--config",
            str(cfg),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
        r = httpx.get(f"http://127.0.0.1:{port}/login")
        assert r.status_code == 200 and "登录" in r.text
        assert "HttpOnly" in r.headers["set-cookie"]
        assert httpx.get(f"http://127.0.0.1:{port}/static/panel.css").status_code == 200
        assert (tmp_path / "data" / "panel.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0].decode()
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Traceback" not in out, out


def test_live_stream_resumes_after_last_event_id(served: Served) -> None:
    """Server-sent events over a real socket: an event per carton, and a reconnect with
    Last-Event-ID gets only what came after."""
    with httpx.Client(base_url=served.url, timeout=10) as http:
        token = _login(http, "op")
        assert token
        served.env.bus.publish(CARTON_TOPIC, carton(1))
        served.env.bus.publish(CARTON_TOPIC, carton(2))
        first = _read_events(http, {}, 2)
        assert [e["id"] for _, e in first] == ["c0001", "c0002"]
        served.env.bus.publish(CARTON_TOPIC, carton(3))
        again = _read_events(http, {"last-event-id": first[-1][0]}, 1)
        assert [e["id"] for _, e in again] == ["c0003"]
        assert 'data-carton="c0003"' in again[0][1]["html"]


def _login(http: httpx.Client, username: str) -> str:
    import re

    page = http.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    r = http.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert r.status_code in (200, 303)
    return token.group(1)


def _read_events(
    http: httpx.Client, headers: dict[str, str], n: int
) -> list[tuple[str, dict[str, str]]]:
    events: list[tuple[str, dict[str, str]]] = []
    with http.stream("GET", "/live/stream", headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id = ""
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                events.append((event_id, json.loads(line[6:])))
                if len(events) == n:
                    break
    return events


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import datetime as dt
    import ipaddress
    import os

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dock-panel")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "panel.crt", tmp_path / "panel.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    os.chmod(key_path, 0o600)
    return cert_path, key_path


@pytest.mark.slow
def test_over_tls_the_cookie_is_secure_and_host_only(tmp_path: Path, port: int) -> None:
    import threading

    import uvicorn

    from edge.panel.server import uvicorn_config
    from tests.panel.support import make_env

    cert, key = _self_signed(tmp_path)
    env = make_env(tmp_path, tls_cert=cert, tls_key=key)
    server = uvicorn.Server(uvicorn_config(env.app, env.config, port=port))
    thread = threading.Thread(target=server.run, name="panel-uvicorn-tls")
    thread.start()
    try:
        wait_for_port(port)
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=str(cert)) as http:
            r = http.get("/login")
            cookie = r.headers["set-cookie"]
            assert cookie.startswith("__Host-dg_session=")
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            _login(http, "op")
            assert http.get("/stock", headers={"accept": "text/html"}).status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        env.ledger.close()
