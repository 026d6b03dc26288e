"""A small asyncio TCP fault proxy for HTTP/1.1 (our own Toxiproxy, in a thread).

For each request it picks one fault, seeded, from a shuffle bag (the weights as counts, drawn
without replacement, refilled when empty): every fault kind occurs once per bag of requests, so a
short run on a slow machine still meets each of them, and the order stays random:

- ``pass``: forward untouched
- ``delay``: hold the response 50 ms .. 1.5 s
- ``drop``: close the client connection without forwarding anything
- ``cut_request``: forward half the request, then close both sides
- ``cut_response``: forward the request, return half the response, close (the server committed,
  the client never learns it: the limit_data toxic)
- ``duplicate``: forward the request twice (the second copy on its own upstream connection)

It parses just enough HTTP (head + Content-Length) to know where a message ends.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter

FAULTS = ("pass", "delay", "drop", "cut_request", "cut_response", "duplicate")


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    try:
        body = await reader.readexactly(length) if length else b""
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return head + body


class FaultProxy:
    def __init__(
        self,
        listen_port: int,
        upstream_port: int,
        seed: int,
        weights: dict[str, float] | None = None,
    ) -> None:
        self.listen_port, self.upstream_port = listen_port, upstream_port
        self.rng = random.Random(seed)
        self.weights = weights or {
            "pass": 4,
            "delay": 2,
            "drop": 1,
            "cut_request": 1,
            "cut_response": 1,
            "duplicate": 1,
        }
        self.counts: Counter[str] = Counter()
        self._bag: list[str] = []
        self.enabled = True
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self._background: set[asyncio.Future[None]] = set()

    def start(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def _close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.listen_port)
        )
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    def _pick(self) -> str:
        if not self.enabled:
            return "pass"
        if not self._bag:
            self._bag = [n for n, w in self.weights.items() for _ in range(round(w))]
            self.rng.shuffle(self._bag)
        return self._bag.pop()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_w: asyncio.StreamWriter | None = None
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                fault = self._pick()
                self.counts[fault] += 1
                if fault == "drop":
                    return
                if fault == "cut_request":
                    up_w.write(request[: len(request) // 2])
                    await up_w.drain()
                    return
                if fault == "duplicate":
                    task = asyncio.ensure_future(self._send_alone(request))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                up_w.write(request)
                await up_w.drain()
                response = await _read_message(up_r)
                if response is None:
                    return
                if fault == "cut_response":
                    writer.write(response[: len(response) // 2])
                    await writer.drain()
                    return
                if fault == "delay":
                    await asyncio.sleep(self.rng.uniform(0.05, 1.5))
                writer.write(response)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            return
        finally:
            for w in (writer, up_w):
                if w is not None:
                    w.close()

    async def _send_alone(self, request: bytes) -> None:
        try:
            r, w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            w.write(request)
            await w.drain()
            await _read_message(r)
            w.close()
        except (ConnectionError, OSError, asyncio.CancelledError):
            return
