"""End to end in real headless Chromium against the panel on a real uvicorn.

Log in, watch cartons appear live (server-sent events), resolve a review item, try to release a
frozen batch as an operator (refused) and as QA (works), switch language; a screenshot of each
main screen goes to artifacts/panel/. Touch targets are measured on a 10-inch tablet in landscape
and portrait.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from edge.panel.services import CARTON_TOPIC, DefectBox
from tests.panel.conftest import Served
from tests.panel.support import (
    PASSWORD,
    XSS,
    carton,
    labels,
    publish_history,
    publish_samples,
)
from tests.support.browser import chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TABLET = {"width": 1280, "height": 800}
PORTRAIT = {"width": 800, "height": 1280}
MIN_TARGET = 48
TARGETS_JS = """() => [...document.querySelectorAll('a, button, input, select')]
  .filter(e => e.offsetParent !== null && e.type !== 'hidden')
  .map(e => { const r = e.getBoundingClientRect();
              return [e.tagName + ' ' + (e.textContent || e.name || '').trim().slice(0, 30),
                      Math.round(r.width), Math.round(r.height)]; })"""


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def shot(page: Page, out: Path, name: str, full: bool = True) -> None:
    page.screenshot(path=str(out / f"{name}.png"), full_page=full)


def small_targets(page: Page) -> list[object]:
    return [t for t in page.evaluate(TARGETS_JS) if t[2] < MIN_TARGET or t[1] < MIN_TARGET]


def log_in(page: Page, url: str, username: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{url}/live")


def test_operator_and_qa_journey(served: Served, browser: Browser, artifacts_dir: Path) -> None:
    out = artifacts_dir / "panel"
    out.mkdir(exist_ok=True)
    url, env = served.url, served.env
    page = browser.new_page(viewport=TABLET)
    page.goto(f"{url}/stock")  # not logged in: sent to the login page, then back
    expect(page).to_have_url(f"{url}/login?next=%2Fstock")
    expect(page.locator("h1")).to_have_text("登录")
    shot(page, out, "login")

    # watch cartons arrive live, without reloading
    log_in(page, url, "op")
    expect(page.locator("#live-state")).to_have_class("badge eq-ok", timeout=10000)
    publish_samples(env.bus)
    expect(page.locator('[data-carton="c0005"]')).to_be_visible(timeout=10000)
    expect(page.locator(".carton")).to_have_count(5)
    env.bus.publish(CARTON_TOPIC, carton(6, lot="A24B120"))
    expect(page.locator(".carton").first).to_have_attribute("data-carton", "c0006")
    # markup in a lot number arriving live stays text, in the real browser too
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    evil = '<img src=x onerror="alert(1)">'
    env.bus.publish(CARTON_TOPIC, carton(90, lot=XSS, agv_task=evil))
    card = page.locator('[data-carton="c0090"]')
    expect(card).to_contain_text(XSS)
    expect(card).to_contain_text(evil)
    assert card.locator("script, img").count() == 0 and dialogs == []
    card.evaluate("e => e.remove()")
    time.sleep(1.6)  # let the arrival highlight fade before the picture
    shot(page, out, "live")
    assert small_targets(page) == []

    # resolve a review item
    page.click("nav >> text=人工复核")
    expect(page.locator(f"#item-{env.r1}")).to_be_visible()
    shot(page, out, "review")
    page.fill(f"#item-{env.r1} input[name=expiry]", "2027-08-31")
    page.click(f"#item-{env.r1} button")
    expect(page.locator(".msg.good")).to_be_visible()
    expect(page.locator(f"#item-{env.r1}")).to_have_count(0)
    assert [m["reviewed_from"] for m in labels(env)] == [env.r1]

    # stock with the frozen batch still frozen
    page.click("nav >> text=库存")
    expect(page.locator("tr.is-frozen")).to_have_count(1)
    shot(page, out, "stock")
    assert small_targets(page) == []

    # an operator may not release a frozen batch
    page.click("nav >> text=质检")
    page.fill("#batch-T-0042 input[name=reason]", "looks fine to me")
    page.click("#batch-T-0042 button")
    expect(page.locator(".msg.bad")).to_contain_text("您的角色无权执行此操作")
    assert [b.lot for b in env.ledger.frozen_batches()] == ["T-0042"]
    page.click("#logout")
    expect(page).to_have_url(f"{url}/login")

    # QA may; the damaged carton of that batch is shown as evidence
    env.bus.publish(
        CARTON_TOPIC,
        carton(
            7,
            lot="T-0042",
            defect="damaged",
            defect_score=0.88,
            defect_boxes=(DefectBox(0.5, 0.1, 0.35, 0.6, "wet"),),
        ),
    )
    log_in(page, url, "qa")
    page.goto(f"{url}/qa")
    shot(page, out, "qa")
    page.fill("#batch-T-0042 input[name=reason]", "re-inspected: cartons dry, contents intact")
    page.click("#batch-T-0042 button")
    expect(page.locator(".msg.good")).to_contain_text("T-0042")
    assert env.ledger.frozen_batches() == []

    # an hour of line history for the charts and the device figures
    publish_history(env.bus)

    # charts, equipment, device in Chinese
    for name in ("charts", "equipment", "device"):
        page.goto(f"{url}/{name}")
        shot(page, out, name)
        assert small_targets(page) == [], name

    # switch to English: the whole screen changes, and stays English on the next page
    page.goto(f"{url}/stock")
    page.click("#lang-switch")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Stock")
    shot(page, out, "stock-en")
    page.click("nav >> text=Live line")
    expect(page.locator("h1")).to_have_text("Cartons through the gate")
    expect(page.locator(".carton").first).to_contain_text("Accepted")
    shot(page, out, "live-en", full=False)

    # a 10-inch tablet held upright
    page.set_viewport_size(PORTRAIT)
    page.goto(f"{url}/live")
    shot(page, out, "live-portrait", full=False)
    assert small_targets(page) == []
    page.goto(f"{url}/review")
    shot(page, out, "review-portrait", full=False)
    assert small_targets(page) == []
    page.close()
