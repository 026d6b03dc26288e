"""Over-the-air model releases: TUF metadata, verified downloads, atomic model swap."""
