"""Real implementations of the panel's Protocols over parts that exist today.

- :class:`GtinLotValidator`: typed codes checked with the GS1 grammar of ``edge/codes``.
- :class:`NodeDeviceProvider`: device id from config, certificate expiry from the trust
  directory, model versions from ``models/manifest.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

from edge.contracts.errors import DockgateError, ErrorCode
from edge.panel.services import DeviceFacts

CERT_FILE = "device.crt"  # same name as edge.trust.keys.CERT_FILE; read-only use here


class GtinLotValidator:
    """GTIN (check digit), lot and optional expiry typed by a person, checked with the code
    grammar of ``edge.codes`` (the same rules the OCR reader and the scanners use)."""

    def validate(self, fields: Mapping[str, str]) -> dict[str, str]:
        from edge.codes import validate_field

        gtin = fields.get("gtin", "").strip()
        lot = fields.get("lot", "").strip()
        if not gtin or not lot:
            raise DockgateError(ErrorCode.CODE_INVALID, "GTIN and lot are required")
        out = {"gtin": str(validate_field("gtin", gtin)), "lot": str(validate_field("lot", lot))}
        expiry = fields.get("expiry", "").strip()
        if expiry:
            value = validate_field("expiry", expiry)
            out["expiry"] = value.isoformat() if isinstance(value, date) else str(value)
        return out


class NodeDeviceProvider:
    def __init__(
        self, device_id: str, site: str, trust_dir: Path, models_dir: Path | None = None
    ) -> None:
        self.device_id, self.site = device_id, site
        self.trust_dir, self.models_dir = trust_dir, models_dir

    def facts(self) -> DeviceFacts:
        return DeviceFacts(self.device_id, self.site, self._cert_not_after(), self._models())

    def _cert_not_after(self) -> str | None:
        path = self.trust_dir / CERT_FILE
        if not path.exists():
            return None
        from cryptography import x509

        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except ValueError:
            return None
        return cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")

    def _models(self) -> dict[str, str]:
        # Imported here: the session module pulls onnxruntime, which a panel-only run avoids.
        from edge.vision import session

        try:
            entries = session.read_manifest(self.models_dir or session.MODELS_DIR)
        except DockgateError:
            return {}
        return {name: entry.version for name, entry in sorted(entries.items())}
