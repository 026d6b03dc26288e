"""Wire contracts shared by the edge node and the cloud service.

This package imports nothing else from ``edge`` (a test enforces it), so ``cloud`` may import it.
"""
