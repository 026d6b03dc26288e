"""The ``[ota]`` section of the edge config: where signed model releases come from."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from edge.contracts.settings import StrictModel

#: what a node can keep up to date: the defect model and the CRNN code recogniser (the names
#: the release repository signs them under, see cloud/services/training.py)
MODEL_NAMES = ("defect", "ocr.crnn")


class OtaConfig(StrictModel):
    """Signed model updates (TUF). Off by default: a node runs its shipped models until enabled."""

    enabled: bool = Field(False, description="poll the release server and install new models")
    url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        max_length=300,
        description="release repository base URL, e.g. https://cloud.example:8443/ota",
    )
    dir: Path | None = Field(
        None, description="OTA state (trusted metadata, staging, model slots); default DATA/ota"
    )
    models: list[str] = Field(
        ["defect"],
        min_length=1,
        max_length=8,
        description="model names kept on the version the release server points at: "
        "defect, ocr.crnn (the CRNN code recogniser; needs ocr.recognizer crnn, both or cascade)",
    )
    poll_s: int = Field(300, ge=30, le=86400, description="seconds between update checks")
    timeout_s: float = Field(30.0, ge=1.0, le=600.0, description="HTTP timeout per request")
    selftest_min_accuracy: float = Field(
        0.7,
        gt=0.0,
        le=1.0,
        description="share of known-answer fixture frames a new model must get right to switch",
    )
    crnn_selftest_min_accuracy: float = Field(
        0.7,
        gt=0.0,
        le=1.0,
        description="share of the fields on the committed carton crops a new CRNN must read "
        "right (alone, through the reader) to switch",
    )

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: list[str]) -> list[str]:
        unknown = [m for m in models if m not in MODEL_NAMES]
        if unknown:
            raise ValueError(
                f"{unknown[0]!r} is not a model the node manages over the air "
                f"(known: {', '.join(MODEL_NAMES)})"
            )
        return models

    @model_validator(mode="after")
    def _url_when_enabled(self) -> OtaConfig:
        if self.enabled and self.url is None:
            raise ValueError("set 'url' when OTA is enabled")
        return self

    def ota_dir(self, data_dir: Path) -> Path:
        return self.dir if self.dir is not None else data_dir / "ota"
