"""Translations: flat JSON catalogues ``i18n/<lang>.json``, zh-CN first.

A missing key renders as the key itself (so a test can find it) and both catalogues must hold
the same keys (a test checks that too). Strings may contain ``{name}`` placeholders.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from edge.contracts.errors import DESCRIPTIONS, ErrorCode

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
_DIR = Path(__file__).resolve().parent / "i18n"


@cache
def catalogue(lang: str) -> dict[str, str]:
    data = json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items()}


def pick_language(raw: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    return raw if raw in LANGUAGES else default


class Translator:
    """``t("nav.stock")`` in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = pick_language(lang)
        self._cat = catalogue(self.lang)

    def __call__(self, key: str, **values: object) -> str:
        text = self._cat.get(key, key)
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._cat

    def error(self, code: str) -> str:
        """The sentence for a stable error code in this language (code alone if unknown)."""
        key = f"error.{code}"
        if key in self._cat:
            return self._cat[key]
        if self.lang == "en" and code in ErrorCode.__members__:
            return DESCRIPTIONS[ErrorCode(code)]
        return code
