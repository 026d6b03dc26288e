"""Dockgate's own code-line recogniser: a small CRNN trained with CTC on synthetic inkjet lines.

- :mod:`.charset` - the classes (CTC blank first, then the characters the code grammar needs);
- :mod:`.data` - seeded line crops from the carton generator (:mod:`fixtures.cartons`) plus
  extra degradations, and the one preprocessing step shared by training and runtime;
- :mod:`.net`, :mod:`.train` - the PyTorch model, training and ONNX export (``[train]`` extra);
- :mod:`.runtime` - :class:`CrnnRecognizer`, onnxruntime only, with the call contract of
  :class:`edge.vision.ocr.recognize.Recognizer` (grey line crops in, ``T x C`` softmax out);
- :mod:`.metrics` - greedy decoding, character error rate, line exact match.
"""

from pathlib import Path

#: Where rendered training and held-out lines are kept in shards and reused (``build_lines``'
#: ``cache``): the default of ``train-codes --cache`` and of the recogniser benches.
LINE_CACHE = Path.home() / ".cache" / "dockgate" / "crnn"
