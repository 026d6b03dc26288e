"""The paho adapter (edge.agv.mqtt.MqttLink) against a real Mosquitto: link changes and what
it logs about them."""

from __future__ import annotations

import logging

import pytest

from edge.agv.config import AgvConfig
from edge.agv.mqtt import MqttLink
from tests.agv.helpers import wait_for
from tests.support.mosquitto import Broker


def _link(broker: Broker, links: list[bool]) -> MqttLink:
    cfg = AgvConfig(broker_port=broker.port, client_id="link-test")
    return MqttLink(cfg, lambda _t, _p: None, links.append)


def test_a_clean_stop_is_not_reported_as_a_lost_link(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    links: list[bool] = []
    link = _link(broker, links)
    link.start()
    try:
        wait_for(lambda: links == [True], what="connected")
    finally:
        with caplog.at_level(logging.INFO, logger="edge.agv.mqtt"):
            link.stop()
    assert links == [True, False]
    assert "BROKER_UNREACHABLE" not in caplog.text
    assert "disconnected from the broker (stopping)" in caplog.text


def test_a_broker_that_goes_away_is_reported(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    links: list[bool] = []
    link = _link(broker, links)
    link.start()
    try:
        wait_for(lambda: links == [True], what="connected")
        with caplog.at_level(logging.WARNING, logger="edge.agv.mqtt"):
            broker.stop()
            wait_for(lambda: False in links, what="link lost")
        assert "BROKER_UNREACHABLE: link to broker lost" in caplog.text
    finally:
        link.stop()
