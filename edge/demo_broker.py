"""The demo's embedded MQTT broker (amqtt), for machines without Mosquitto.

    python -m edge.demo_broker --port 1883 [--host 127.0.0.1]

Run as a child process by :meth:`edge.demo_stack.Stack.broker` when Mosquitto is not installed
(or when asked for). It listens on loopback only, allows anonymous clients (like the demo's
Mosquitto configuration: every peer is a local simulator), keeps nothing on disk and stops
cleanly on SIGTERM or SIGINT. The $SYS topics and amqtt's packet logger are left out: the demo
does not read them and they cost CPU on a 2-core box.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

log = logging.getLogger("dockgate.broker")


def broker_config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


async def serve(host: str, port: int, stop: asyncio.Event) -> None:
    from amqtt.broker import Broker

    broker = Broker(broker_config(host, port))
    await broker.start()
    log.info("embedded MQTT broker (amqtt) listening on %s:%d", host, port)
    try:
        await stop.wait()
    finally:
        await broker.shutdown()
        log.info("embedded MQTT broker stopped")


async def _main(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(host, port, stop)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Dockgate's embedded MQTT broker (amqtt)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # amqtt logs every connection and packet at INFO: the demo's log would grow without bound
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    asyncio.run(_main(args.host, args.port))


if __name__ == "__main__":
    main()
