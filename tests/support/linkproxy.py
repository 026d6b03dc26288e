"""A TCP link with switchable faults between two real processes (a small Toxiproxy in a thread).

Modes, switched at any time with :meth:`LinkProxy.set_mode`:

- ``up``: bytes pass untouched;
- ``down``: the link is cut: open connections are closed and new ones are closed as soon as
  they are accepted (the peer sees a reset or an empty answer, as behind a dead uplink);
- ``slow``: every chunk waits ``latency_s`` and the link carries at most ``bandwidth_bps``
  bytes per second in each direction (Toxiproxy's ``latency`` and ``bandwidth`` toxics).

A flapping link is ``up``/``down`` switched by the caller. ``counts`` says how many connections
each mode accepted and ``cut`` how many open connections a switch to ``down`` closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from typing import Literal

Mode = Literal["up", "down", "slow"]
CHUNK = 4096


class LinkProxy:
    def __init__(
        self,
        listen_port: int,
        upstream_port: int,
        *,
        latency_s: float = 0.3,
        bandwidth_bps: int = 16_000,
    ) -> None:
        self.listen_port, self.upstream_port = listen_port, upstream_port
        self.latency_s, self.bandwidth_bps = latency_s, bandwidth_bps
        self.mode: Mode = "up"
        self.counts: Counter[str] = Counter()
        self.cut = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="linkproxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()

    # lifecycle --------------------------------------------------------------------------------
    def start(self) -> LinkProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("link proxy did not start")
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode == "down":
            asyncio.run_coroutine_threadsafe(self._cut_all(), self._loop).result(10)

    # internals ----------------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.listen_port)
        )
        self._ready.set()
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut_all(count=False)

    async def _cut_all(self, count: bool = True) -> None:
        for writer in list(self._open):
            self.cut += count
            writer.transport.abort()
        self._open.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counts[self.mode] += 1
        if self.mode == "down":
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if self.mode == "slow":
                    await asyncio.sleep(self.latency_s + len(data) / self.bandwidth_bps)
                if self.mode == "down" or writer.transport.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
