"""Equipment screen over real peers: AGV simulators on a real Mosquitto, a PLC adapter that
cannot reach its PLC, a line without PLC, and the sync agent's state file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge.agv.config import AgvConfig
from edge.agv.service import DispatchService
from edge.panel.equipment import (
    AgvStatusProvider,
    LinkStatusProvider,
    MqttStatusProvider,
    SyncStatusProvider,
)
from edge.panel.services import EquipmentStatus
from firmware_bridge.modbus.config import ModbusTcpLineConfig
from firmware_bridge.modbus.plc import ModbusLineIO
from firmware_bridge.noop import NoopLineIO
from tests.agv.helpers import SITEMAP, Observer, Sims, online, wait_for
from tests.panel.conftest import login
from tests.panel.support import PanelEnv
from tests.support.mosquitto import Broker
from tests.support.net import free_port


@pytest.fixture
def dispatch(broker: Broker, tmp_path: Path, vda5050_dir: Path) -> Iterator[DispatchService]:
    cfg = AgvConfig(broker_port=broker.port, sitemap=SITEMAP, schemas_dir=vda5050_dir,
                    state_timeout_s=6.0, tick_s=0.05)  # fmt: skip
    svc = DispatchService(cfg, tmp_path / "agv")
    svc.start()
    yield svc
    svc.stop()


@pytest.mark.slow
def test_agvs_and_broker_from_the_dispatcher(
    client: TestClient, env: PanelEnv, broker: Broker, dispatch: DispatchService
) -> None:
    env.app.state.services.equipment += [
        AgvStatusProvider(dispatch.dispatcher), MqttStatusProvider(dispatch.dispatcher, "mosquitto")
    ]  # fmt: skip
    sims = Sims(broker.port)
    try:
        sims.start(count=2, prefix="agv-")
        wait_for(online(dispatch, 2), what="two AGVs online")
        login(client, "op", env)
        page = client.get("/equipment").text
        assert "dockgate-sim/agv-01" in page and "dockgate-sim/agv-02" in page
        assert page.count("电量 100%") == 2
        assert "mosquitto" in page and "BROKER_UNREACHABLE" not in page
        # an error the vehicle reports over VDA 5050 shows on its row, as the vehicle named it
        witness = Observer(broker.port)
        witness.start()
        try:
            witness.publish(
                "dockgate-sim/dockgate-sim/agv-02/control",
                {"cmd": "error", "errorType": "laserBlocked", "errorLevel": "WARNING"},
            )
            wait_for(
                lambda: "laserBlocked" in client.get("/equipment").text,
                what="reported AGV error on the panel",
            )
        finally:
            witness.stop()
        assert "车辆上报故障" in client.get("/equipment").text
    finally:
        sims.stop_all()
    broker.stop()
    wait_for(lambda: not dispatch.dispatcher.status()["link_up"], what="link down")
    page = client.get("/equipment").text
    assert "BROKER_UNREACHABLE" in page and "无法连接 MQTT 消息服务" in page


def test_plc_link_states_and_last_error(client: TestClient, env: PanelEnv) -> None:
    async def unreachable_plc_status() -> object:
        io = ModbusLineIO(ModbusTcpLineConfig(host="127.0.0.1", port=free_port()), lambda f: None)
        await io.start()
        for _ in range(100):
            if io.status().last_error is not None:
                break
            await asyncio.sleep(0.05)
        status = io.status()
        await io.stop()
        return status

    frozen_status = asyncio.run(unreachable_plc_status())

    class Snapshot:  # the status taken while the adapter ran, served as the adapter would
        def status(self) -> object:
            return frozen_status

    env.app.state.services.equipment.append(LinkStatusProvider("plc", [Snapshot()]))
    env.app.state.services.equipment.append(LinkStatusProvider("scanner", [NoopLineIO()]))
    login(client, "op", env)
    page = client.get("/equipment").text
    assert "PLC_DISCONNECTED" in page and "PLC 无响应，正在重连。" in page
    assert "未启用（未安装设备）" in page  # the no-op adapter says DISABLED, never "OK"


def test_sync_state_file_drives_the_sync_row(env: PanelEnv, tmp_path: Path) -> None:
    state = tmp_path / "sync-state.json"
    provider = SyncStatusProvider(env.ledger, state)
    (row,) = provider.status()
    assert row.last_success is None and row.pending == env.ledger.outbox_stats().pending
    state.write_text(
        json.dumps(
            {
                "last_success": "2026-11-22T05:00:00.000Z",
                "consecutive_failures": 3,
                "last_error_code": "SYNC_UNREACHABLE",
            }
        )
    )
    (row,) = provider.status()
    assert row == EquipmentStatus("sync", "cloud", "error", pending=row.pending,
                                  last_success="2026-11-22T05:00:00.000Z",
                                  error_code="SYNC_UNREACHABLE")  # fmt: skip
