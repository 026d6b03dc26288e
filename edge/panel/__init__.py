"""The operator's local web panel, served by the edge node itself and usable with no internet.

``create_app(services, config, db_path)`` in :mod:`edge.panel.app` builds the FastAPI app; the
node hands it its parts through :class:`edge.panel.services.PanelServices`. Accounts, sessions
and the audit log live in ``<data_dir>/panel.db``; ``dockgate edge user ...`` manages accounts
and ``dockgate edge panel`` serves it.
"""
