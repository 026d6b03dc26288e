"""``dockgate verify FILE|-``: check envelopes offline against the fleet CA chain.

Input: one compact JWS per line (blank lines and ``#`` comments skipped), or a JSON array of
them, or the JSON of ``GET /v1/devices/{id}/events?envelopes=true``. Trust comes from a bundle
(``dockgate cloud trust-bundle``: CA chain, device certificates, revocations) or, on a device,
from its own trust directory. Prints ``valid`` or the reason per envelope and exits 1 if any is
invalid. Within each device, consecutive sequences must link by ``prev_hash``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import click
from cryptography import x509

from edge.contracts.envelope import DeviceKey, read_header, verify_envelope
from edge.contracts.errors import DockgateError, ErrorCode
from edge.trust.chain import verify_chain


@dataclass
class Trust:
    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate]
    devices: dict[str, x509.Certificate]  # by x5t#S256
    revoked: dict[str, int] = field(default_factory=dict)  # device id -> valid through seq

    @classmethod
    def from_bundle(cls, path: Path) -> Trust:
        data = json.loads(path.read_text())
        chain = x509.load_pem_x509_certificates(data["chain"].encode())
        devices = [x509.load_pem_x509_certificate(p.encode()) for p in data.get("devices", [])]
        revoked = {r["device_id"]: int(r.get("through_seq") or 0) for r in data.get("revoked", [])}
        return cls._split(chain, devices, revoked)

    @classmethod
    def from_trust_dir(cls, trust_dir: Path) -> Trust:
        chain = x509.load_pem_x509_certificates((trust_dir / "ca-chain.pem").read_bytes())
        device = x509.load_pem_x509_certificate((trust_dir / "device.crt").read_bytes())
        return cls._split(chain, [device], {})

    @classmethod
    def _split(
        cls, chain: list[x509.Certificate], devices: list[x509.Certificate], revoked: dict[str, int]
    ) -> Trust:
        roots = [c for c in chain if c.issuer == c.subject]
        inter = [c for c in chain if c.issuer != c.subject]
        by_fp = {DeviceKey.from_cert(c).fingerprint: c for c in devices}
        return cls(roots, inter, by_fp, revoked)


def _tokens(text: str) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("["):
        items = json.loads(stripped)
        return [i["envelope"] if isinstance(i, dict) else str(i) for i in items]
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def check(token: str, trust: Trust, heads: dict[str, tuple[int, str]]) -> str:
    """``valid`` or ``CODE: reason`` for one envelope; ``heads`` tracks chain links per device."""
    try:
        cert = trust.devices.get(str(read_header(token).get("x5t#S256")))
        if cert is None:
            raise DockgateError(ErrorCode.DEVICE_UNKNOWN, "unknown certificate")
        key = DeviceKey.from_cert(cert)
        env = verify_envelope(token, key)
        at = _event_time(env.ts)
        verify_chain(cert, trust.intermediates, trust.roots, at)
        through = trust.revoked.get(key.device_id)
        if through is not None and env.seq > through:
            raise DockgateError(
                ErrorCode.DEVICE_REVOKED,
                f"revoked certificate (valid only through seq {through}, this is {env.seq})",
            )
        prev = heads.get(key.device_id)
        if prev is not None and env.seq == prev[0] + 1 and env.event["prev_hash"] != prev[1]:
            raise DockgateError(ErrorCode.CHAIN_BROKEN, f"broken chain link at seq {env.seq}")
        if env.seq == 1 and env.event["prev_hash"] != "0" * 64:
            raise DockgateError(ErrorCode.CHAIN_BROKEN, "broken chain link: seq 1 not genesis")
        heads[key.device_id] = (env.seq, env.event["hash"])
        return "valid"
    except DockgateError as exc:
        return f"{exc.code.value}: {exc.message}"


def _event_time(ts: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        raise DockgateError(ErrorCode.EVENT_INVALID, f"bad event time {ts!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@click.command("verify")
@click.argument("file", type=click.File("r"), default="-")
@click.option(
    "--bundle",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="trust bundle from 'dockgate cloud trust-bundle'",
)
@click.option(
    "--trust-dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="a device's trust directory (its own certificate and CA chain)",
)
def verify_cmd(file: TextIO, bundle: Path | None, trust_dir: Path | None) -> None:
    """Verify signed envelopes in FILE (or - for stdin) offline against the fleet CA chain."""
    if bundle is not None and trust_dir is None:
        trust = Trust.from_bundle(bundle)
    elif trust_dir is not None and bundle is None:
        trust = Trust.from_trust_dir(trust_dir)
    else:
        raise click.UsageError("give exactly one of --bundle or --trust-dir")
    heads: dict[str, tuple[int, str]] = {}
    bad = 0
    for n, token in enumerate(_tokens(file.read()), start=1):
        verdict = check(token, trust, heads)
        bad += verdict != "valid"
        click.echo(f"{n}: {verdict}")
    if bad:
        click.echo(f"{bad} invalid", err=True)
        sys.exit(1)
