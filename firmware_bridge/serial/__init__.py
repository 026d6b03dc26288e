"""Serial (RS-232 / USB-serial) barcode scanners: pure framing, the port reader, a pty simulator."""
