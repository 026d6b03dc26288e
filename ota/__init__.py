"""Signed model releases (TUF): the release repository, the edge updater and the model swap."""
