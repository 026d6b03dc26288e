"""Stable error codes: the one place where every code a person or a peer can see is defined.

Codes never change meaning once released; a new situation gets a new code. The README's
error-code table is generated from :data:`DESCRIPTIONS` (``dockgate errors --markdown``) and a
test checks that it lists every code.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every stable error code of Dockgate."""

    # configuration and input
    CONFIG_INVALID = "CONFIG_INVALID"
    CODE_INVALID = "CODE_INVALID"
    IMAGE_INVALID = "IMAGE_INVALID"
    # ledger rules
    NEGATIVE_STOCK = "NEGATIVE_STOCK"
    BATCH_FROZEN = "BATCH_FROZEN"
    FEFO_VIOLATION = "FEFO_VIOLATION"
    EXPIRY_BLOCKED = "EXPIRY_BLOCKED"
    OVERRIDE_REASON_REQUIRED = "OVERRIDE_REASON_REQUIRED"
    UNKNOWN_SKU = "UNKNOWN_SKU"
    UNKNOWN_UNIT = "UNKNOWN_UNIT"
    UNKNOWN_LOCATION = "UNKNOWN_LOCATION"
    UNKNOWN_SUPPLIER = "UNKNOWN_SUPPLIER"
    EXPIRY_WARNING = "EXPIRY_WARNING"
    BELOW_SAFETY_STOCK = "BELOW_SAFETY_STOCK"
    QUANTITY_INVALID = "QUANTITY_INVALID"
    EVENT_INVALID = "EVENT_INVALID"
    CHAIN_BROKEN = "CHAIN_BROKEN"
    PROJECTION_MISMATCH = "PROJECTION_MISMATCH"
    STORAGE_FULL = "STORAGE_FULL"
    LEDGER_WRITE_FAILED = "LEDGER_WRITE_FAILED"
    LEDGER_CORRUPT = "LEDGER_CORRUPT"
    # trust and sync
    SIG_INVALID = "SIG_INVALID"
    ALG_NOT_ALLOWED = "ALG_NOT_ALLOWED"
    DEVICE_MISMATCH = "DEVICE_MISMATCH"
    DEVICE_UNKNOWN = "DEVICE_UNKNOWN"
    DEVICE_REVOKED = "DEVICE_REVOKED"
    CERT_EXPIRED = "CERT_EXPIRED"
    CERT_CHAIN_INVALID = "CERT_CHAIN_INVALID"
    TOKEN_INVALID = "TOKEN_INVALID"
    SEQ_GAP = "SEQ_GAP"
    REPLAY = "REPLAY"
    CHAIN_FORK = "CHAIN_FORK"
    FROZEN_CONFLICT = "FROZEN_CONFLICT"
    CLOCK_SKEW = "CLOCK_SKEW"
    SYNC_UNREACHABLE = "SYNC_UNREACHABLE"
    SYNC_REJECTED = "SYNC_REJECTED"
    NOT_ENROLLED = "NOT_ENROLLED"
    # people and web
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    CSRF_INVALID = "CSRF_INVALID"
    RATE_LIMITED = "RATE_LIMITED"
    TOTP_REQUIRED = "TOTP_REQUIRED"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    NOT_FOUND = "NOT_FOUND"
    PATH_INVALID = "PATH_INVALID"
    # vision
    UNREADABLE = "UNREADABLE"
    MODEL_INVALID = "MODEL_INVALID"
    CAMERA_LOST = "CAMERA_LOST"
    BACKPRESSURE_DIVERTED = "BACKPRESSURE_DIVERTED"
    # line and fleet I/O
    BROKER_UNREACHABLE = "BROKER_UNREACHABLE"
    AGV_MESSAGE_INVALID = "AGV_MESSAGE_INVALID"
    AGV_UNAVAILABLE = "AGV_UNAVAILABLE"
    AGV_ORDER_FAILED = "AGV_ORDER_FAILED"
    AGV_ROUTE_UNKNOWN = "AGV_ROUTE_UNKNOWN"
    SCANNER_DISCONNECTED = "SCANNER_DISCONNECTED"
    SCANNER_FRAME_GARBLED = "SCANNER_FRAME_GARBLED"
    PLC_DISCONNECTED = "PLC_DISCONNECTED"
    PLC_TIMEOUT = "PLC_TIMEOUT"
    PLC_EXCEPTION = "PLC_EXCEPTION"
    PLC_WRITE_FAILED = "PLC_WRITE_FAILED"
    PLC_HANDSHAKE_TIMEOUT = "PLC_HANDSHAKE_TIMEOUT"
    PLC_HEARTBEAT_LOST = "PLC_HEARTBEAT_LOST"
    # OTA
    OTA_METADATA_EXPIRED = "OTA_METADATA_EXPIRED"
    OTA_SIGNATURE_INVALID = "OTA_SIGNATURE_INVALID"
    OTA_HASH_MISMATCH = "OTA_HASH_MISMATCH"
    OTA_ROLLBACK_REFUSED = "OTA_ROLLBACK_REFUSED"
    OTA_SELFTEST_FAILED = "OTA_SELFTEST_FAILED"
    OTA_DOWNLOAD_FAILED = "OTA_DOWNLOAD_FAILED"
    OTA_NOT_INSTALLED = "OTA_NOT_INSTALLED"
    OTA_INCOMPATIBLE = "OTA_INCOMPATIBLE"
    OTA_DEVICE_ROLLBACK = "OTA_DEVICE_ROLLBACK"
    ROLLOUT_CONFLICT = "ROLLOUT_CONFLICT"
    SAMPLE_INVALID = "SAMPLE_INVALID"
    LABEL_INVALID = "LABEL_INVALID"
    CANDIDATE_REJECTED = "CANDIDATE_REJECTED"
    TRAINING_FAILED = "TRAINING_FAILED"


DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.CONFIG_INVALID: "A configuration key has a value outside what is allowed; start-up stops.",
    ErrorCode.CODE_INVALID: "A GTIN, lot, SSCC, date or SKU code does not match its pattern or check digit.",
    ErrorCode.IMAGE_INVALID: "An image file is missing, empty, truncated, not an image or of unusable size.",
    ErrorCode.NEGATIVE_STOCK: "The movement would take a stock position below zero.",
    ErrorCode.BATCH_FROZEN: "The batch is under QA freeze: it cannot be picked, shipped or moved out of quarantine.",
    ErrorCode.FEFO_VIOLATION: "An older (earlier-expiring) non-frozen batch of the same SKU is available; pick that first or override with a reason.",
    ErrorCode.EXPIRY_BLOCKED: "The batch expires within the block window; it cannot be sold or shipped.",
    ErrorCode.OVERRIDE_REASON_REQUIRED: "A supervisor override needs a written reason.",
    ErrorCode.UNKNOWN_SKU: "No SKU with that code or GTIN in the master data.",
    ErrorCode.UNKNOWN_UNIT: "The SKU has no conversion for that unit of measure.",
    ErrorCode.UNKNOWN_LOCATION: "No storage location with that code in the master data.",
    ErrorCode.UNKNOWN_SUPPLIER: "No supplier with that code in the master data.",
    ErrorCode.EXPIRY_WARNING: "Warning, not a refusal: the batch expires within the warning window.",
    ErrorCode.BELOW_SAFETY_STOCK: "Alert: the SKU's available stock fell below its safety stock.",
    ErrorCode.QUANTITY_INVALID: "A quantity is zero, negative where not allowed, or not a whole number of base units.",
    ErrorCode.EVENT_INVALID: "An event is malformed: unknown kind, missing field or wrong type.",
    ErrorCode.CHAIN_BROKEN: "A stored event's hash or prev_hash does not match: the log was altered.",
    ErrorCode.PROJECTION_MISMATCH: "The stock table differs from a replay of the event log.",
    ErrorCode.STORAGE_FULL: "The disk (or the ledger's size limit) is full; the node accepts no new work until space returns.",
    ErrorCode.LEDGER_WRITE_FAILED: "The ledger could not commit a write (I/O error); nothing was acknowledged.",
    ErrorCode.LEDGER_CORRUPT: "The ledger file is damaged (SQLite reports a malformed database); restore it from a backup or the cloud.",
    ErrorCode.SIG_INVALID: "A signature does not verify over the bytes it claims to cover.",
    ErrorCode.ALG_NOT_ALLOWED: "The envelope names an algorithm other than the device certificate's (or 'none').",
    ErrorCode.DEVICE_MISMATCH: "The device id in the envelope differs from the one in the certificate.",
    ErrorCode.DEVICE_UNKNOWN: "No enrolled device with that id or certificate.",
    ErrorCode.DEVICE_REVOKED: "The device was revoked; its new submissions are refused.",
    ErrorCode.CERT_EXPIRED: "The certificate was not valid at the time given.",
    ErrorCode.CERT_CHAIN_INVALID: "The certificate does not chain to the fleet CA.",
    ErrorCode.TOKEN_INVALID: "The enrollment token is unknown, expired or already used.",
    ErrorCode.SEQ_GAP: "Events are missing before this sequence number; resend from the sequence given.",
    ErrorCode.REPLAY: "A sequence number was sent again with different content (possible cloned device).",
    ErrorCode.CHAIN_FORK: "Two different events claim the same (device, sequence), or a batch does not extend the last checkpoint.",
    ErrorCode.FROZEN_CONFLICT: "A pick of a batch that another node froze was made while this node was offline.",
    ErrorCode.CLOCK_SKEW: "The device clock differs from the server's by more than the allowed skew; the event is kept and flagged.",
    ErrorCode.SYNC_UNREACHABLE: "The cloud service cannot be reached; events wait in the outbox.",
    ErrorCode.SYNC_REJECTED: "The cloud refused a batch; the reason code is given with it.",
    ErrorCode.NOT_ENROLLED: "This device has no certificate yet: run 'dockgate edge enroll'.",
    ErrorCode.UNAUTHENTICATED: "No valid session or credentials (HTTP 401).",
    ErrorCode.FORBIDDEN: "Authenticated, but the role does not allow this (HTTP 403).",
    ErrorCode.CSRF_INVALID: "A state-changing request came without a valid CSRF token.",
    ErrorCode.RATE_LIMITED: "Too many attempts; wait and try again (HTTP 429).",
    ErrorCode.TOTP_REQUIRED: "This account needs a valid one-time code from its authenticator.",
    ErrorCode.REQUEST_TOO_LARGE: "The request body is over the allowed size.",
    ErrorCode.NOT_FOUND: "No such object.",
    ErrorCode.PATH_INVALID: "A file name in the request tries to leave its directory (.., /, \\, NUL); refused and audited.",
    ErrorCode.UNREADABLE: "The carton code could not be read with enough certainty; the carton goes to review.",
    ErrorCode.MODEL_INVALID: "A model file is missing, truncated or its sha256 differs from the manifest; it is not loaded.",
    ErrorCode.CAMERA_LOST: "The camera stopped delivering frames; reconnecting.",
    ErrorCode.BACKPRESSURE_DIVERTED: "Inference fell behind the line; the carton went to the manual lane.",
    ErrorCode.BROKER_UNREACHABLE: "The MQTT broker cannot be reached; dispatch tasks wait in the ledger database.",
    ErrorCode.AGV_MESSAGE_INVALID: "A VDA 5050 message failed schema validation and was ignored.",
    ErrorCode.AGV_UNAVAILABLE: "No AGV is online, idle and charged enough; the task waits in the queue.",
    ErrorCode.AGV_ORDER_FAILED: "An AGV lost its connection, reported a fatal error or went silent during an order.",
    ErrorCode.AGV_ROUTE_UNKNOWN: "A dispatch task names a node or location that is not on the site map, or no path joins them.",
    ErrorCode.SCANNER_DISCONNECTED: "The serial scanner port is gone; reconnecting with backoff.",
    ErrorCode.SCANNER_FRAME_GARBLED: "A scanner frame could not be parsed; it was counted and skipped.",
    ErrorCode.PLC_DISCONNECTED: "The PLC does not answer on its Modbus connection; reconnecting.",
    ErrorCode.PLC_TIMEOUT: "A Modbus request to the PLC timed out.",
    ErrorCode.PLC_EXCEPTION: "The PLC answered a Modbus request with an exception response.",
    ErrorCode.PLC_WRITE_FAILED: "Writing an output to the PLC failed after retries; it was not assumed done.",
    ErrorCode.PLC_HANDSHAKE_TIMEOUT: "The PLC did not echo a sorting command's sequence in time; the carton goes to the reject lane.",
    ErrorCode.PLC_HEARTBEAT_LOST: "The heartbeat between edge and PLC stopped (either direction); the PLC sends every carton to the reject lane until it recovers.",
    ErrorCode.OTA_METADATA_EXPIRED: "The update metadata has expired; the device keeps running the model it has.",
    ErrorCode.OTA_SIGNATURE_INVALID: "Update metadata is not signed by the trusted keys.",
    ErrorCode.OTA_HASH_MISMATCH: "A downloaded model's length or hash differs from its signed metadata.",
    ErrorCode.OTA_ROLLBACK_REFUSED: "The offered metadata or release version is lower than one already trusted.",
    ErrorCode.OTA_SELFTEST_FAILED: "The new model failed its self-test on known frames; the device stays on the old one.",
    ErrorCode.OTA_DOWNLOAD_FAILED: "The release server could not be reached or a download broke off; the device keeps its model and resumes later.",
    ErrorCode.OTA_NOT_INSTALLED: "No trusted root or no verified model version is installed on this device for OTA.",
    ErrorCode.OTA_INCOMPATIBLE: "The release needs a newer Dockgate than this device runs; it is not downloaded and the device keeps its model.",
    ErrorCode.OTA_DEVICE_ROLLBACK: "The device went back to its previous model on its own (crash loop or failed health after a switch) and will not reinstall that release.",
    ErrorCode.ROLLOUT_CONFLICT: "The rollout's state does not allow this action, or another rollout of the same model is already under way.",
    ErrorCode.SAMPLE_INVALID: "An uploaded training sample was refused: its bytes do not match its sha256, it is not a PNG or JPEG, or its metadata is too large.",
    ErrorCode.LABEL_INVALID: "A sample label was refused: wrong kind for the sample, unknown defect class, a box outside the image, or the label it replaces or disputes is no longer the sample's current one.",
    ErrorCode.CANDIDATE_REJECTED: "A retrained model did worse than the production model on the dataset's regression or validation set (or had nothing to be judged on); it was not released.",
    ErrorCode.TRAINING_FAILED: "A training job stopped before it had a candidate model: the export, the trainer or the release step failed, or the service stopped during the job; the job shows why.",
}


class DockgateError(Exception):
    """An error with a stable code and a sentence a person can act on."""

    def __init__(self, code: ErrorCode, message: str, **details: object) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
        self.details = details

    def as_dict(self) -> dict[str, object]:
        """JSON form used by HTTP problem responses and CLI ``--json`` output."""
        return {"code": self.code.value, "message": self.message, **self.details}


def markdown_table() -> str:
    """The README's error-code table."""
    lines = ["| Code | Meaning |", "| --- | --- |"]
    lines += [f"| `{code.value}` | {DESCRIPTIONS[code]} |" for code in ErrorCode]
    return "\n".join(lines)
