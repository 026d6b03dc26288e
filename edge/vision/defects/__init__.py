"""Defect detection: ONNX inference (:mod:`.model`), verdict to action (:mod:`.verdict`).

Import from the submodules (``edge.vision.defects.model``, ``.verdict``, ``.config``): this
package module stays empty so that loading the config does not pull in onnxruntime. Training
(:mod:`.train`, :mod:`.net`) needs the ``[train]`` extra (PyTorch) and is never imported by the
inference path.
"""
