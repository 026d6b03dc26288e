"""Dockgate cloud service: fleet CA, event ingest, fleet stock, freezes, model rollout."""
