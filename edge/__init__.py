"""Dockgate edge node: capture, read, sign, book, act, sync."""

__version__ = "0.1.0"
