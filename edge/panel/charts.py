"""Small server-rendered SVG charts (no chart library, no script, works offline).

Every value is also written as text on the chart, so the reading never depends on colour alone.
All text passes through :func:`markupsafe.escape`.
"""

from __future__ import annotations

from collections.abc import Mapping

from markupsafe import Markup, escape

W, H, PAD_L, PAD_B, PAD_T = 560, 240, 56, 30, 24
# Okabe-Ito palette: distinguishable with the common colour-vision deficiencies.
STATUS_COLOURS = {
    "ACCEPTED": "#009E73",
    "REVIEW": "#E69F00",
    "UNREADABLE": "#CC79A7",
    "ERROR": "#D55E00",
}


def _svg(body: str, title: str, height: int = H, width: int = W) -> Markup:
    return Markup(  # noqa: S704 - every interpolated text below is escaped
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def bar_chart(points: list[tuple[str, int]], title: str) -> Markup:
    """Vertical bars with the count above each bar."""
    top = max([v for _, v in points] + [1])
    n = max(len(points), 1)
    slot = (W - PAD_L) / n
    parts = [f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W}" y2="{H - PAD_B}" class="axis"/>']
    for i, (label, value) in enumerate(points):
        h = (H - PAD_B - PAD_T) * value / top
        x = PAD_L + i * slot + slot * 0.15
        y = H - PAD_B - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
            f'class="bar"/>'
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 4:.1f}" class="val">{value}</text>'
        )
        if n <= 8 or i % 2 == (n - 1) % 2:  # every other hour label when crowded
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{H - 8}" class="lbl">{escape(label)}</text>'
            )
    return _svg("".join(parts), title)


def share_bar(counts: Mapping[str, int], labels: Mapping[str, str], title: str) -> Markup:
    """One stacked bar of shares, plus a legend row per status with count and percent."""
    total = sum(counts.values())
    parts, x = [], float(PAD_L)
    width = W - PAD_L - 10
    for status, value in counts.items():
        if total and value:
            w = width * value / total
            parts.append(
                f'<rect x="{x:.1f}" y="10" width="{w:.1f}" height="40" '
                f'fill="{STATUS_COLOURS.get(status, "#777")}" class="share s-{escape(status)}"/>'
            )
            x += w
    for row, (status, value) in enumerate(counts.items()):
        y = 86 + row * 34
        pct = f"{100 * value / total:.0f}%" if total else "-"
        parts.append(
            f'<rect x="{PAD_L}" y="{y - 18}" width="22" height="22" '
            f'fill="{STATUS_COLOURS.get(status, "#777")}"/>'
            f'<text x="{PAD_L + 32}" y="{y}" class="legend">'
            f"{escape(labels.get(status, status))}: {value} ({pct})</text>"
        )
    return _svg("".join(parts), title, height=76 + 34 * len(counts))


def line_chart(
    points: list[tuple[str, float | None]], title: str, unit: str, width: int = 1100
) -> Markup:
    """A line over the points that have a value; gaps where there was no carton."""
    values = [v for _, v in points if v is not None]
    top = max([*values, 1.0]) * 1.15
    n = max(len(points) - 1, 1)
    step = (width - PAD_L - 20) / n
    parts = [
        f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{width}" y2="{H - PAD_B}" class="axis"/>',
        f'<text x="4" y="{PAD_T + 4}" class="lbl-l">{top:.0f} {escape(unit)}</text>',
    ]
    path: list[str] = []
    for i, (label, value) in enumerate(points):
        x = PAD_L + i * step
        if i % 2 == 0:
            parts.append(f'<text x="{x:.1f}" y="{H - 8}" class="lbl">{escape(label)}</text>')
        if value is None:
            if len(path) > 1:
                parts.append(f'<polyline points="{" ".join(path)}" class="line"/>')
            path = []
            continue
        y = H - PAD_B - (H - PAD_B - PAD_T) * value / top
        path.append(f"{x:.1f},{y:.1f}")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" class="dot"/>'
            f'<text x="{x:.1f}" y="{y - 8:.1f}" class="val">{value:.0f}</text>'
        )
    if len(path) > 1:
        parts.append(f'<polyline points="{" ".join(path)}" class="line"/>')
    return _svg("".join(parts), title, width=width)
