"""The labeling page in real headless Chromium against the cloud on a real uvicorn.

A labeler logs in and works through the queue with the keyboard only where the page says so:
a smudged code line whose reader text is wrong (typing replaces it, the grammar's verdict shows
as they type, Enter saves), a line the reader got right (Enter confirms), and a damaged carton
face (key 3 = crush, a mouse drag draws the box, Enter saves). The labels land in the database
with who and the box in image pixels. The screenshot goes to artifacts/console/label.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from cloud.auth import add_user
from cloud.db.models import Label
from fixtures.cartons.frame import generate_crop
from fixtures.defects.domains import TRAIN
from fixtures.defects.face import render_face
from tests.cloud.env import PASSWORD
from tests.loop.env import LoopCloud, loop_cloud
from tests.support.browser import chromium, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def served(tmp_path: Path, port: int) -> Iterator[tuple[str, LoopCloud]]:
    with loop_cloud(f"sqlite:///{tmp_path}/cloud.db", tmp_path) as env:
        with serve(env.http.app, port, "label-uvicorn") as url:
            yield url, env


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def encode(bgr: object) -> bytes:
    ok, buf = cv2.imencode(".png", bgr)  # type: ignore[call-overload]
    assert ok
    return bytes(buf)


def misread(text: str) -> str:
    """What a reader makes of smudged print: one digit wrong."""
    i = next(i for i, c in enumerate(text) if c.isdigit())
    return text[:i] + ("8" if text[i] != "8" else "3") + text[i + 1 :]


def test_labeler_works_the_queue_with_the_keyboard(
    served: tuple[str, LoopCloud], browser: Browser, artifacts_dir: Path
) -> None:
    url, cloud = served
    wrong_img, wrong = generate_crop(11, smudge=0.35, height=56)
    right_img, right = generate_crop(12, smudge=0.1, height=56)
    rgb, damage_box, _ = render_face(5, "crush", TRAIN)
    assert damage_box is not None
    a = cloud.upload(encode(wrong_img), {"status": "REVIEW", "text": misread(wrong["text"])}).id
    b = cloud.upload(encode(right_img), {"status": "REVIEW", "text": right["text"]}).id
    c = cloud.upload(encode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), {"kind": "defect"}).id
    with cloud.svc.sessions.begin() as s:
        add_user(s, "test", "lena", "labeler", PASSWORD)

    page: Page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{url}/console/label")
    expect(page).to_have_url(f"{url}/console/login?next=/console/label")
    page.fill("input[name=username]", "lena")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(f"{url}/console/label")
    expect(page.locator("#sample")).to_have_attribute("data-sample", str(a))
    expect(page.locator("#waiting")).to_have_text("3 waiting")
    box = page.locator("#check")
    # the reader's wrong text is checked at once (its check digit or date may even pass)
    expect(box).not_to_be_empty()
    # typing replaces the selected reader text; a half-typed code is flagged as one types
    page.keyboard.type(wrong["text"][:6])
    expect(box).to_contain_text("✗")
    page.keyboard.type(wrong["text"][6:])
    expect(box).to_contain_text("✓")
    expect(page.locator("#code-text")).to_have_value(wrong["text"])
    shots = artifacts_dir / "console"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "label.png"))
    page.keyboard.press("Enter")

    expect(page.locator("#sample")).to_have_attribute("data-sample", str(b))
    expect(page.locator("#saved")).to_contain_text(f"sample {a} saved")
    expect(box).to_contain_text("✓")
    page.keyboard.press("Enter")  # the reader was right: Enter confirms its text

    expect(page.locator("#sample")).to_have_attribute("data-sample", str(c))
    page.keyboard.press("3")
    expect(page.locator("#cls-crush")).to_be_checked()
    img = page.locator("#sample-image")
    expect(img).to_have_js_property("complete", True)
    shown = img.bounding_box()
    assert shown is not None
    k = shown["width"] / rgb.shape[1]
    x0, y0, x1, y1 = damage_box
    page.mouse.move(shown["x"] + x0 * k, shown["y"] + y0 * k)
    page.mouse.down()
    page.mouse.move(shown["x"] + (x0 + x1) / 2 * k, shown["y"] + (y0 + y1) / 2 * k, steps=4)
    page.mouse.move(shown["x"] + x1 * k, shown["y"] + y1 * k, steps=4)
    page.mouse.up()
    expect(page.locator("#box")).to_be_visible()
    expect(box).to_contain_text("✓")
    page.screenshot(path=str(shots / "label-defect.png"))
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#waiting")).to_have_text("0 waiting")
    page.close()

    with cloud.svc.sessions() as s:
        got = list(s.execute(select(Label).order_by(Label.id)).scalars())
    assert [(lb.sample_pk, lb.kind, lb.who) for lb in got] == [
        (a, "code", "person:lena"),
        (b, "code", "person:lena"),
        (c, "defect", "person:lena"),
    ]
    assert got[0].fields == wrong["fields"] and got[1].fields == right["fields"]
    assert got[1].value == right["text"] and got[2].value == "crush"
    bx, by, bw, bh = got[2].fields["box"]
    # the drawn box is the damage's box, within the few pixels a hand (and scaling) is off by
    assert abs(bx - x0) <= 4 and abs(by - y0) <= 4
    assert abs(bx + bw - x1) <= 4 and abs(by + bh - y1) <= 4
