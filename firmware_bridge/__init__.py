"""Serial scanners and the sorting-line PLC: raw protocol peers and their simulators.

Imports nothing from ``edge`` except ``edge.contracts``; hands the runtime raw facts
(:mod:`firmware_bridge.ports`) and never interprets them.

How the runtime is meant to wire it (``edge/runtime`` owns the wiring)::

    line = build_line_io(config.line_io, sink=bus.put_line)      # asyncio, on the I/O loop
    scanner = build_scan_source(config.scanner, sink=bus.put_scan)  # own reader thread

    PhotoEyeEdge("scan", blocked=True, tracking_id=N)  -> capture a frame for carton N,
                                                          scanner.trigger() (software trigger)
    Scan(symbology="]C1", data=b"00...\\x1d10...")      -> edge/codes (biip) -> ground truth for
                                                          the OCR read of the same carton
    decision for carton N (chute c, 0 = reject)         -> await line.send_sort_command(N, c);
                                                          an unconfirmed CommandAck means the
                                                          PLC rejects the carton by itself
    node health                                         -> await line.set_stack_light(...)
    ConnectionStatus (state, last ErrorCode, sentence)  -> panel status
"""
