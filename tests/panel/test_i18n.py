"""No mixed-language screens: every page in zh-CN and en, checked against both catalogues."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from edge.panel.i18n import LANGUAGES, catalogue
from tests.panel.conftest import csrf_of, login
from tests.panel.support import PanelEnv, publish_samples

PAGES = [
    "/live",
    "/review",
    "/qa",
    "/stock",
    "/charts",
    "/equipment",
    "/device",
    "/audit",
    "/no-such-page",
]
CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")


def visible_text(page: str) -> str:
    """Text a person sees: element text plus placeholder/alt/aria-label/title attributes,
    without the language switch (which names the other language in that language)."""
    page = re.sub(r"<button[^>]*\blang=\"[^\"]+\"[^>]*>.*?</button>", " ", page, flags=re.S)
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    attrs = re.findall(r'(?:placeholder|alt|aria-label|title)="([^"]*)"', page)
    text = re.sub(r"<[^>]+>", " ", page)
    return html.unescape(" ".join([text, *attrs]))


def test_catalogues_have_the_same_keys() -> None:
    zh, en = catalogue("zh-CN"), catalogue("en")
    assert set(zh) == set(en)
    for key in zh:
        assert re.findall(r"\{\w+\}", zh[key]) == re.findall(r"\{\w+\}", en[key]), key
        assert zh[key].strip() and en[key].strip(), key


def test_every_template_key_exists() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "edge" / "panel"
    used = set()
    for path in [*root.glob("templates/*.html"), *root.glob("routers/*.py")]:
        used |= set(re.findall(r"\bt\(\s*[\"']([a-z_]+\.[A-Za-z_.-]+)[\"']", path.read_text()))
    missing = sorted(k for k in used if k not in catalogue("en"))
    assert not missing


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_is_in_one_language(client: TestClient, env: PanelEnv, lang: str) -> None:
    other = "en" if lang == "zh-CN" else "zh-CN"
    mine, theirs = catalogue(lang), catalogue(other)
    foreign = sorted(
        # a string that also occurs inside this language's own text (e.g. "GTIN") is not foreign
        {v for v in theirs.values() if len(v) >= 3 and not any(v in m for m in mine.values())},
        key=len,
        reverse=True,
    )
    key_pattern = re.compile(
        r"\b(?:{})\.[A-Za-z_.-]+".format("|".join(sorted({k.split(".")[0] for k in mine})))
    )

    client.post("/lang", data={"csrf_token": csrf_of(client), "lang": lang})
    pages = {"/login": client.get("/login").text}
    login(client, "sup", env)
    publish_samples(env.bus)
    for path in PAGES:
        pages[path] = client.get(path, headers={"accept": "text/html"}).text
    for path, page in pages.items():
        assert f'<html lang="{lang}">' in page, path
        text = visible_text(page)
        keys = [k for k in key_pattern.findall(text) if k in mine]
        assert not keys, f"{path} ({lang}) shows catalogue keys {keys}"
        found = [v for v in foreign if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text)]
        assert not found, f"{path} ({lang}) shows {other} strings: {found}"
        if lang == "en":
            assert not CJK.search(text), f"{path} (en) shows Chinese: {CJK.findall(text)[:5]}"


def test_default_language_is_chinese(client: TestClient) -> None:
    page = client.get("/login").text
    assert '<html lang="zh-CN">' in page and "登录" in page
