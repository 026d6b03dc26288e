"""The reader's approximate substring search (Sellers' algorithm) against a brute force over
every substring: same distance rule (look-alikes cost nothing), same tie-breaks."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.vision.ocr.reader import _differ, _near_substring

ALPHABET = "0123456789OQDBS8IL() -/.:AEGZ"


def distance(a: str, b: str) -> int:
    @cache
    def d(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j - 1) + _differ(a[i - 1], b[j - 1]), d(i - 1, j) + 1, d(i, j - 1) + 1)

    return d(len(a), len(b))


def brute(text: str, pattern: str, k: int) -> tuple[int, int] | None:
    """The closest substring; ties to the earliest end, then the earliest start."""
    if not pattern:
        return None
    best: tuple[int, int, int] | None = None  # (distance, end, start)
    for end in range(len(text) + 1):
        for start in range(end + 1):
            cand = (distance(pattern, text[start:end]), end, start)
            if end == 0:
                continue  # Sellers reports matches ending at a text character
            if best is None or cand < best:
                best = cand
    if best is None or best[0] > k:
        return None
    return best[2], best[1]


@settings(max_examples=300, deadline=None)
@given(
    st.text(ALPHABET, max_size=14),
    st.text(ALPHABET, max_size=6),
    st.integers(min_value=0, max_value=3),
)
def test_matches_the_brute_force(text: str, pattern: str, k: int) -> None:
    assert _near_substring(text, pattern, k) == brute(text, pattern, k)


def test_look_alikes_are_free_and_an_exact_match_ends_the_scan() -> None:
    assert _near_substring("LOT A24B117", "A24B117", 0) == (4, 11)
    assert _near_substring("EXP 2O27.O8.31", "2027", 0) == (4, 8)  # O for 0 costs nothing
    assert _near_substring("(17)270831 270831", "270831", 1) == (4, 10)  # the first one
    assert _near_substring("12345", "999", 1) is None
