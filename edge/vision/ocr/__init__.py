"""Carton-code OCR: localise, recognise (ONNX), grammar-constrained CTC decode, fuse, read."""
