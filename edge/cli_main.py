"""``python -m edge.cli_main`` runs the ``dockgate`` command (for tests and containers)."""

from edge.cli import main

if __name__ == "__main__":
    main()
