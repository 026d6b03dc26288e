"""Serial scanners and the sorting-line PLC: raw protocol peers and their simulators.

Imports nothing from ``edge`` except ``edge.contracts``.
"""
