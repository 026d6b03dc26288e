"""The OTA agent following directives against the real TUF router (fast, no cloud API: the
directives are applied directly, as the cloud would answer them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from edge.contracts.errors import ErrorCode
from edge.contracts.ota import Assignment, OtaDirective
from ota.agent import Managed, OtaAgent
from ota.link import CloudLink
from tests.ota.conftest import Fleet
from tests.ota.kill_child import NoSigner
from tests.ota.test_swap import swapper


def assigned(fleet: Fleet, version: str, *, shadow: bool = False) -> Assignment:
    target = next(p for p, c in fleet.repo.releases().items() if c.get("version") == version)
    info = fleet.repo.load("targets").signed.targets[target]
    return Assignment(
        name="defect",
        version=version,
        target=target,
        sha256=info.hashes["sha256"],
        length=info.length,
        shadow=shadow,
    )


def directive(*assignments: Assignment) -> OtaDirective:
    return OtaDirective(device_id="edge-01", assignments=list(assignments), etag="t")


def agent_for(fleet: Fleet, **kwargs: Any) -> tuple[OtaAgent[Any], Managed[Any]]:
    client = fleet.device("edge-01")
    managed: Managed[Any] = Managed(swapper(client.metadata_dir.parent))
    link = CloudLink("http://127.0.0.1:9", NoSigner())
    return OtaAgent(link, client, {"defect": managed}, dockgate_version="9.9.9", **kwargs), managed


def test_directives_switch_shadow_probation_and_expiry(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    fleet.release("1.1.0", activate=False)
    fleet.release("9.9.9-bad", activate=False)
    agent, m = agent_for(fleet, probation_observations=5, probation_max_error_rate=0.2)
    a, b, bad = (assigned(fleet, v) for v in ("1.0.0", "1.1.0", "9.9.9-bad"))

    assert agent.apply(directive(a)) and m.running() == "1.0.0" and m.last_code is None
    # shadow: B loaded beside A, never acting
    assert agent.apply(directive(a, assigned(fleet, "1.1.0", shadow=True)))
    assert m.running() == "1.0.0" and m.shadow is not None and m.shadow.version == "1.1.0"
    # a shadow that fails its self-test is refused and remembered
    agent.apply(directive(a, assigned(fleet, "9.9.9-bad", shadow=True)))
    assert m.shadow is None and m.last_code is ErrorCode.OTA_SELFTEST_FAILED
    assert m.refused("9.9.9-bad") is not None
    # acting B: switched, on probation, confirmed after healthy cartons
    assert agent.apply(directive(b)) and m.running() == "1.1.0"
    assert m.swapper.store.probation() == 0
    for _ in range(5):
        agent.observe("defect", "1.1.0", latency_ms=3.0, confidence=0.9)
    agent._check_probation()
    assert m.swapper.store.probation() is None
    # the refused release is never fetched again, even when assigned
    agent.apply(directive(bad))
    assert m.running() == "1.1.0" and m.last_code is ErrorCode.OTA_SELFTEST_FAILED

    # metadata expires: nothing new is installed, the line keeps its model ...
    fleet.repo.refresh(timestamp_expiry=dt.timedelta(hours=-1))
    agent.apply(directive(bad))  # (refused anyway)
    agent.apply(directive(assigned(fleet, "1.0.0")))  # ... but a cloud rollback to the kept A
    assert m.running() == "1.0.0"  # goes through: its file was verified at install
    assert m.last_code is ErrorCode.OTA_METADATA_EXPIRED
    report, _ = agent.build_report()
    (model,) = report.models
    assert model.running == "1.0.0" and model.last_code is ErrorCode.OTA_METADATA_EXPIRED
    assert [r.version for r in model.refused] == ["9.9.9-bad"]


def test_expired_metadata_never_installs_anything_new(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    fleet.release("1.1.0", activate=False)
    agent, m = agent_for(fleet)
    agent.apply(directive(assigned(fleet, "1.0.0")))
    b = assigned(fleet, "1.1.0")
    fleet.repo.refresh(timestamp_expiry=dt.timedelta(hours=-1))
    assert agent.apply(directive(b))
    assert m.running() == "1.0.0" and m.last_code is ErrorCode.OTA_METADATA_EXPIRED
    assert not any("/targets/defect/1.1.0/" in path for path, _ in fleet.log)  # not downloaded


def test_probation_health_failure_rolls_back_on_the_device(fleet: Fleet) -> None:
    fleet.release("1.0.0")
    fleet.release("1.1.0", activate=False)
    agent, m = agent_for(fleet, probation_observations=10, probation_max_error_rate=0.1)
    agent.apply(directive(assigned(fleet, "1.0.0")))
    agent.apply(directive(assigned(fleet, "1.1.0")))
    for i in range(10):
        agent.observe("defect", "1.1.0", error=i % 3 == 0)
    assert agent._check_probation()
    assert m.running() == "1.0.0" and m.last_code is ErrorCode.OTA_DEVICE_ROLLBACK
    refused = m.refused("1.1.0")
    assert refused is not None and refused["reason"].startswith("health: error rate 0.40")
    fetches = len(fleet.log)
    agent.apply(directive(assigned(fleet, "1.1.0")))  # the cloud has not caught up yet
    assert m.running() == "1.0.0" and len(fleet.log) == fetches  # refused, nothing fetched
