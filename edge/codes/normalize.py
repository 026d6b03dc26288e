"""Input normalisation shared by every way a code comes in (OCR text, typed text, labels)."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"[^\S\n]+")  # any whitespace except the line break
# Colons and dashes that look alike in print and that NFKC leaves alone.
_LOOKALIKES = str.maketrans(
    {"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2212": "-"}
)


def normalize(text: str) -> str:
    """Canonical form of printed or typed code text.

    - full-width to half-width (NFKC: ``（０１）`` -> ``(01)``, ``：`` -> ``:``, U+3000 -> space);
    - look-alike dashes to ``-``; ``\\r\\n`` and ``\\r`` to ``\\n``;
    - per line: trim, collapse runs of spaces/tabs to one space; empty lines dropped;
    - upper case (CJK is unaffected).
    """
    text = unicodedata.normalize("NFKC", text).translate(_LOOKALIKES)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line).upper()
