"""The ``[defects]`` section of the edge config."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from edge.contracts.settings import StrictModel


class DefectConfig(StrictModel):
    """Defect model and the two thresholds that turn its score into freeze / review / pass."""

    enabled: bool = Field(True, description="run the defect model on every carton frame")
    model: Path | None = Field(
        None,
        description="ONNX file to use instead of the manifest's 'defect' entry (needs sha256)",
    )
    sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="expected sha256 of 'model' (hex)"
    )
    threads: int = Field(1, ge=1, le=4, description="onnxruntime intra-op threads (2-core box: 1)")
    freeze_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="defect score at or above which the batch is frozen; default: the model's own",
    )
    review_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="defect score from which a frame goes to review; default: the model's own",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DefectConfig:
        if (self.model is None) != (self.sha256 is None):
            raise ValueError("set both 'model' and 'sha256', or neither (use the manifest)")
        f, r = self.freeze_threshold, self.review_threshold
        if f is not None and r is not None and r > f:
            raise ValueError(f"review_threshold ({r}) must not exceed freeze_threshold ({f})")
        return self
