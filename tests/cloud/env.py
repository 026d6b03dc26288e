"""A cloud service under test: real database (SQLite file or a fresh PostgreSQL schema), real CA."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pyotp
from fastapi.testclient import TestClient

from cloud.app import create_app
from cloud.auth import add_user
from cloud.config import CloudConfig
from cloud.deps import Services
from cloud.services.ca import init_ca
from cloud.services.registry import create_token
from edge.sync.client import CloudClient
from edge.trust.enroll import build_csr
from edge.trust.keys import Identity, generate_key
from edge.trust.signer import DeviceSigner

PASSWORD = "correct horse battery"


@contextmanager
def pg_schema(base_url: str) -> Iterator[str]:
    """A fresh schema on the test PostgreSQL, dropped afterwards (runs never collide)."""
    schema = "t_" + uuid.uuid4().hex[:12]
    plain = base_url.replace("postgresql+psycopg://", "postgresql://").split("?")[0]
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{plain}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@dataclass
class CloudEnv:
    svc: Services
    http: TestClient
    tmp: Path
    sessions: dict[str, str] = field(default_factory=dict)
    totp: dict[str, str] = field(default_factory=dict)

    def login(self, role: str) -> dict[str, str]:
        """Authorization header of a fresh user with ``role`` (admins pass TOTP)."""
        if role not in self.sessions:
            name = f"{role}-user"
            with self.svc.sessions.begin() as s:
                secret = add_user(s, "test", name, role, PASSWORD)
            body = {"username": name, "password": PASSWORD}
            if secret:
                body["totp"] = pyotp.TOTP(secret).now()
                self.totp[name] = secret
            r = self.http.post("/v1/auth/login", json=body)
            assert r.status_code == 200, r.text
            self.sessions[role] = r.json()["token"]
        return {"Authorization": f"Bearer {self.sessions[role]}"}

    def token(self, site: str = "site-01", org: str = "org-01", device: str | None = None) -> str:
        import datetime as dt

        with self.svc.sessions.begin() as s:
            return create_token(s, "test", org, site, device, dt.timedelta(hours=1))

    def enroll(self, device_id: str, site: str = "site-01", org: str = "org-01") -> Identity:
        key = generate_key()
        body = {
            "token": self.token(site, org),
            "device_id": device_id,
            "csr": build_csr(key, device_id),
        }
        r = self.http.post("/v1/enroll", json=body)
        assert r.status_code == 200, r.text
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(r.json()["certificate"].encode())
        return Identity(key, cert, x509.load_pem_x509_certificates(r.json()["chain"].encode()))

    def client(self, identity: Identity) -> CloudClient:
        return CloudClient("http://testserver", DeviceSigner(identity), http=self.http)


@contextmanager
def cloud_env(db_url: str, tmp: Path) -> Iterator[CloudEnv]:
    init_ca(tmp / "ca", "org-01")
    config = CloudConfig(
        database_url=db_url, issuing_dir=tmp / "ca" / "issuing", freeze_poll_s=0.05
    )
    svc = Services.from_config(config)
    try:
        with TestClient(create_app(svc)) as http:
            yield CloudEnv(svc, http, tmp)
    finally:
        svc.close()
