"""Defect detection: ONNX inference (:mod:`.model`), verdict to action (:mod:`.verdict`).

Training (:mod:`.train`, :mod:`.net`) needs the ``[train]`` extra (PyTorch) and is never
imported by the inference path.
"""

from edge.vision.defects.model import DefectModel, DefectVerdict, ModelInfo
from edge.vision.defects.verdict import Action, verdict_action

__all__ = ["Action", "DefectModel", "DefectVerdict", "ModelInfo", "verdict_action"]
