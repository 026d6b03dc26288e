"""The console's labeling page over HTTP (no browser): roles, CSRF on every form and on the
validation calls, saving, refusals shown on the page, disputes, the page's CSP."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud.auth import add_user
from cloud.db.models import Label
from tests.cloud.env import PASSWORD
from tests.loop.env import LoopCloud, png

GOOD = "(01)06901234567892(17)270831(10)A24B117"


def console_login(cloud: LoopCloud, name: str, role: str) -> str:
    """A person logs in through the console's form; returns the session's CSRF token."""
    with cloud.svc.sessions.begin() as s:
        add_user(s, "test", name, role, PASSWORD)
    http = cloud.http
    r = http.post(
        "/console/login",
        data={"username": name, "password": PASSWORD, "next": "/console/label"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/label", r.text
    return csrf_of(http.get("/console/label").text)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert match, html[:500]
    return match.group(1)


def labels_now(cloud: LoopCloud) -> list[Label]:
    with cloud.svc.sessions() as s:
        return list(s.execute(select(Label).order_by(Label.id)).scalars())


def test_label_page_saves_and_moves_on(cloud: LoopCloud) -> None:
    a = cloud.upload(png(1), {"status": "REVIEW", "text": "(01)06901234567892(17)270831"}).id
    b = cloud.upload(png(2, (64, 96)), {"kind": "defect"}).id
    http: TestClient = cloud.http
    r = http.get("/console/label", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login?next=/console/label"
    csrf = console_login(cloud, "lena", "labeler")
    page = http.get("/console/label")
    assert page.status_code == 200 and f'data-sample="{a}"' in page.text
    assert 'value="(01)06901234567892(17)270831"' in page.text  # the reader's text to confirm
    assert "2 waiting" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe" not in csp
    img = http.get(f"/console/label/{a}/image")
    assert img.status_code == 200 and img.content == png(1)
    assert http.get("/console/label/static/label.js").status_code == 200
    assert http.get("/console/label/static/labeling.py").status_code == 404  # only its 2 files

    # no CSRF token, or one from elsewhere: refused, nothing stored
    r = http.post(f"/console/label/{a}", data={"text": GOOD})
    assert r.status_code == 403 and "CSRF_INVALID" in r.text
    r = http.post(
        f"/console/label/{a}",
        data={"text": GOOD, "csrf_token": csrf},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and "CSRF_INVALID" in r.text
    # a bad check digit: the page again, with the problem and what was typed
    r = http.post(f"/console/label/{a}", data={"text": GOOD[:-9] + "3", "csrf_token": csrf})
    assert r.status_code == 422 and "CODE_INVALID" in r.text and 'id="label-error"' in r.text
    assert labels_now(cloud) == []
    r = http.post(
        f"/console/label/{a}",
        data={"text": GOOD, "csrf_token": csrf, "replaces": "0"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/console/label?done={a}"
    page = http.get(r.headers["location"])
    assert f'data-sample="{b}"' in page.text and 'data-kind="defect"' in page.text
    assert f"sample {a} saved" in page.text
    r = http.post(
        f"/console/label/{b}",
        data={"class": "tear", "box": "90,0,20,20", "csrf_token": csrf},
    )
    assert r.status_code == 422 and "LABEL_INVALID" in r.text and "outside" in r.text
    r = http.post(
        f"/console/label/{b}", data={"class": "tear", "box": "10,5,20,20", "csrf_token": csrf}
    )
    assert r.status_code == 200 and 'id="empty"' in r.text  # followed to "nothing to label"
    got = labels_now(cloud)
    assert [(lb.kind, lb.value, lb.who) for lb in got] == [
        ("code", "(01)06901234567892(17)270831(10)A24B117", "person:lena"),
        ("defect", "tear", "person:lena"),
    ]
    assert got[1].fields == {"box": [10, 5, 20, 20]}

    # the history and a dispute from the page: the sample is waiting again
    page = http.get(f"/console/label/{a}")
    assert 'id="history"' in page.text and 'id="dispute-form"' in page.text
    r = http.post(
        f"/console/label/dispute/{got[0].id}",
        data={"reason": "lot is A24B118", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = http.get("/console/label")
    assert f'data-sample="{a}"' in page.text and "disputed by person:lena" in page.text


def test_validate_as_you_type_needs_the_csrf_header(cloud: LoopCloud) -> None:
    csrf = console_login(cloud, "lena", "labeler")
    http = cloud.http
    r = http.post("/console/label/validate", json={"kind": "code", "text": GOOD})
    assert r.status_code == 403 and r.json()["code"] == "CSRF_INVALID"
    h = {"X-CSRF-Token": csrf}
    ok = http.post("/console/label/validate", json={"kind": "code", "text": GOOD}, headers=h)
    assert ok.status_code == 200 and ok.json()["ok"] and ok.json()["fields"]["lot"] == "A24B117"
    assert ok.headers["cache-control"] == "no-store"
    half = http.post("/console/label/validate", json={"kind": "code", "text": "(01)069"}, headers=h)
    assert not half.json()["ok"] and half.json()["issues"][0]["code"] == "CODE_INVALID"
    d = http.post(
        "/console/label/validate", json={"kind": "defect", "class": "wet", "box": [1, 1, 5, 5]},
        headers=h,
    )  # fmt: skip
    assert d.json()["ok"]
    assert http.post("/console/label/validate", content=b"[", headers=h).status_code == 422


def test_only_labelers_qa_and_admins_label(cloud: LoopCloud) -> None:
    a = cloud.upload(png(3)).id
    csrf = console_login(cloud, "vera", "viewer")
    r = cloud.http.get("/console/label")
    assert r.status_code == 403 and "FORBIDDEN" in r.text
    assert cloud.http.get(f"/console/label/{a}/image").status_code == 403
    r = cloud.http.post(f"/console/label/{a}", data={"text": GOOD, "csrf_token": csrf})
    assert r.status_code == 403 and "FORBIDDEN" in r.text
    v = cloud.http.post(
        "/console/label/validate", json={"kind": "code", "text": GOOD},
        headers={"X-CSRF-Token": csrf},
    )  # fmt: skip
    assert v.status_code == 403
    assert labels_now(cloud) == []


def test_a_labeler_sees_only_the_labeling_page(cloud: LoopCloud) -> None:
    console_login(cloud, "lena", "labeler")
    for path in ("/console/fleet", "/console/releases", "/console/rollouts", "/console/rollouts/x"):
        r = cloud.http.get(path, follow_redirects=False)
        assert r.status_code == 403 and "FORBIDDEN" in r.text, path
    assert cloud.http.get("/console/label").status_code == 200
