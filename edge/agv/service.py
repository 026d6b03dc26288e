"""Wire the dispatcher to the broker and a ticker thread; start and stop them cleanly."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from edge.agv.config import AgvConfig
from edge.agv.dispatcher import Dispatcher
from edge.agv.mqtt import MqttLink
from edge.agv.sitemap import SiteMap, load_sitemap
from edge.agv.store import TaskStore
from edge.agv.validation import MessageValidator
from edge.contracts.errors import DockgateError, ErrorCode

log = logging.getLogger(__name__)


class DispatchService:
    """Master control for one site: ``start()``, submit tasks via ``dispatcher``, ``stop()``."""

    def __init__(self, config: AgvConfig, data_dir: Path, sitemap: SiteMap | None = None) -> None:
        if sitemap is None:
            if config.sitemap is None:
                raise DockgateError(ErrorCode.CONFIG_INVALID, "agv.sitemap is not set")
            sitemap = load_sitemap(config.sitemap)
        schemas = config.resolved_schemas_dir()
        self.validator = MessageValidator(schemas if (schemas / "state.schema").exists() else None)
        log.info("VDA 5050 messages are validated with %s", self.validator.source)
        self.store = TaskStore(config.resolved_db_path(data_dir))
        self._link: MqttLink | None = None
        self.dispatcher = Dispatcher(config, sitemap, self.store, _LazyLink(self), self.validator)
        self._link = MqttLink(config, self.dispatcher.on_message, self.dispatcher.on_link)
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._run, name="agv-dispatch-tick", daemon=True)
        self._tick_s = config.tick_s

    def start(self) -> None:
        assert self._link is not None
        self._link.start()
        self._ticker.start()

    def stop(self) -> None:
        """Stop ticking, leave the broker, close the database. Safe to call twice."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout=5)
        if self._link is not None:
            self._link.stop()
        with self.dispatcher.lock:
            self.store.close()

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            try:
                self.dispatcher.tick()
            except Exception:  # keep ticking: one bad task must not stop dispatch
                log.exception("dispatch tick failed")


class _LazyLink:
    """Breaks the construction cycle: the dispatcher needs a link, the link needs callbacks."""

    def __init__(self, service: DispatchService) -> None:
        self._service = service

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        link = self._service._link
        return link.publish(topic, payload, qos, retain) if link is not None else False
