"""The rollout console in real headless Chromium against the cloud on a real uvicorn.

Simulated devices report over real HTTP while a canary runs; an admin logs in with a one-time
code, looks at the fleet, the releases and the rollout (gates, charts), pauses it with the button
(CSRF-protected form) and the page shows it paused. Screenshots go to artifacts/console/.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from cloud.auth import add_user
from tests.cloud.env import PASSWORD
from tests.rollouts_cloud.env import A, B, RolloutEnv, good, rollout_env
from tests.support.browser import chromium, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]
STAGES = [
    {"name": "canary", "percent": 15, "devices": ["edge-000"], "min_soak_s": 3600},
    {"name": "half", "percent": 50, "min_soak_s": 3600},
    {"name": "all", "percent": 100, "min_soak_s": 3600},
]


@pytest.fixture
def served(tmp_path: Path, repo_template: Path, port: int) -> Iterator[tuple[str, RolloutEnv]]:
    with rollout_env(f"sqlite:///{tmp_path}/cloud.db", tmp_path, repo_template) as env:
        with serve(env.cloud.http.app, port, "console-uvicorn") as url:
            yield url, env


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def shot(page: Page, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)


def test_admin_pauses_a_canary_in_chromium(
    served: tuple[str, RolloutEnv], browser: Browser, artifacts_dir: Path
) -> None:
    url, env = served
    out = artifacts_dir / "console"
    out.mkdir(exist_ok=True)
    with env.svc.sessions.begin() as s:
        secret = add_user(s, "test", "ada", "admin", PASSWORD)
    assert secret
    devices = env.add_devices(10)
    env.create(env.cloud.login("admin"), stages=STAGES)
    env.evaluate()
    with httpx.Client(base_url=url, timeout=30) as http:
        for d in devices:
            d.http = http  # devices talk real HTTP to uvicorn from here on
        for i in range(5):  # a few reporting windows; B a little slower, within its gate
            for d in devices:
                d.running = d.acting() or A
                figures = good(60)
                if d.running == B:
                    figures = figures.model_copy(update={"latency_p95_ms": 46.0 + i})
                d.report({d.running: figures})
            if i < 4:
                time.sleep(0.4)
    env.evaluate()
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{url}/console/rollouts/defect-b")  # not logged in: the form, then back
    expect(page).to_have_url(f"{url}/console/login?next=/console/rollouts/defect-b")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=totp]", pyotp.TOTP(secret).now())
    page.click("#login-submit")
    expect(page).to_have_url(f"{url}/console/rollouts/defect-b")
    expect(page.locator("#phase")).to_have_text("canary")
    expect(page.locator("#gates tbody tr")).to_have_count(6)
    assert page.locator("#charts svg.chart").count() == 6
    assert page.locator("#charts polyline.series").count() >= 10  # A and B on most charts
    expect(page.locator("#who")).to_contain_text("ada · admin")
    shot(page, out, "rollout-canary")

    page.fill("#actions form:has(#btn-pause) input[name=reason]", "night shift: watch tomorrow")
    page.click("#btn-pause")
    expect(page.locator("#phase")).to_have_text("paused")
    expect(page.locator("#decisions")).to_contain_text("person:ada")
    expect(page.locator("#decisions")).to_contain_text("night shift: watch tomorrow")
    expect(page.locator("#btn-resume")).to_be_visible()
    shot(page, out, "rollout-paused")

    page.click("a.navlink:has-text('Fleet')")
    expect(page.locator("#fleet tbody tr")).to_have_count(10)
    expect(page.locator("#fleet")).to_contain_text(B)
    shot(page, out, "fleet")
    page.click("a.navlink:has-text('Releases')")
    expect(page.locator("#releases tbody tr")).to_have_count(3)
    page.click("#logout")
    expect(page).to_have_url(f"{url}/console/login")
    page.close()
    assert env.detail(env.cloud.login("viewer"))["state"] == "paused"
