"""Server-rendered SVG line charts of per-version figures over time (no script, no CDN).

Every point's value is also in the chart's text (a ``<title>`` per point and the last value at
the line's end), so a reading never depends on colour alone. All text is escaped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup, escape

from edge.contracts.ota import ModelFigures

W, H, PAD_L, PAD_R, PAD_B, PAD_T = 520, 200, 52, 112, 28, 16
# Okabe-Ito: distinguishable with the common colour-vision deficiencies; dashes differ too.
STYLES = (("#0072B2", ""), ("#D55E00", "6 4"), ("#009E73", "2 3"), ("#CC79A7", "8 3 2 3"))

Metric = Callable[[ModelFigures], float | None]


def _ratio(count: int, total: int) -> float | None:
    return count / total if total else None


METRICS: dict[str, tuple[str, Metric, bool]] = {
    # key: (title, value, is a share 0..1)
    "agreement": (
        "OCR-vs-scanner agreement",
        lambda f: _ratio(f.agreements, f.agreement_pairs),
        True,
    ),
    "errors": ("error rate", lambda f: _ratio(f.errors, f.observations), True),
    "latency": (
        "inference p95 (ms)",
        lambda f: f.latency_p95_ms if f.observations else None,
        False,
    ),
    "confidence": (
        "mean confidence",
        lambda f: f.mean_confidence if f.observations else None,
        True,
    ),
    "review": (
        "REVIEW/UNREADABLE share",
        lambda f: _ratio(f.review_or_unreadable, f.observations),
        True,
    ),
    "defects": ("defect rate", lambda f: _ratio(f.defects, f.observations), True),
    "disagreement": (
        "shadow disagreement",
        lambda f: _ratio(f.disagreements, f.observations),
        True,
    ),
}


def _fmt(value: float, share: bool) -> str:
    return f"{value * 100:.1f}%" if share else f"{value:.4g}"


def line_chart(
    metric: str,
    series: Mapping[str, Sequence[tuple[dt.datetime, ModelFigures]]],
    since: dt.datetime,
    until: dt.datetime,
) -> Markup:
    """One chart of ``metric`` with a line per version (legend: version and its last value)."""
    title, value_of, share = METRICS[metric]
    lines: dict[str, list[tuple[dt.datetime, float]]] = {}
    for version, points in series.items():
        measured = [(at, value_of(f)) for at, f in points]
        lines[version] = [(at, v) for at, v in measured if v is not None]
    values = [v for pts in lines.values() for _, v in pts]
    top = 1.0 if share else max([*values, 1.0]) * 1.1
    bottom = 0.0
    if share and values:
        bottom = max(0.0, min(values) - 0.1)
        top = min(1.0, max(values) + 0.05) if max(values) + 0.05 > bottom else 1.0
    span = max((until - since).total_seconds(), 1.0)
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_B - PAD_T

    def x(at: dt.datetime) -> float:
        return PAD_L + plot_w * min(max((at - since).total_seconds() / span, 0.0), 1.0)

    def y(v: float) -> float:
        rng = (top - bottom) or 1.0
        return PAD_T + plot_h * (1 - (v - bottom) / rng)

    parts = [
        f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" class="axis"/>',
        f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}" class="axis"/>',
        f'<text x="{PAD_L - 4}" y="{PAD_T + 4}" class="lbl" text-anchor="end">'
        f"{escape(_fmt(top, share))}</text>",
        f'<text x="{PAD_L - 4}" y="{H - PAD_B}" class="lbl" text-anchor="end">'
        f"{escape(_fmt(bottom, share))}</text>",
        f'<text x="{PAD_L}" y="{H - 8}" class="lbl">{escape(since.strftime("%H:%M"))}</text>',
        f'<text x="{W - PAD_R}" y="{H - 8}" class="lbl" text-anchor="end">'
        f"{escape(until.strftime('%H:%M UTC'))}</text>",
    ]
    for i, (version, pts) in enumerate(sorted(lines.items())):
        colour, dash = STYLES[i % len(STYLES)]
        if not pts:
            continue
        path = " ".join(f"{x(at):.1f},{y(v):.1f}" for at, v in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"'
            f'{dash_attr} class="series" data-version="{escape(version)}"/>'
        )
        for at, v in pts:
            parts.append(
                f'<circle cx="{x(at):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(version)} {escape(at.strftime('%H:%M:%S'))}: "
                f"{escape(_fmt(v, share))}</title></circle>"
            )
        # legend (one row per version, never overlapping): line sample, version, last value
        ly = PAD_T + 8 + 30 * i
        lx = W - PAD_R + 10
        parts.append(
            f'<line x1="{lx}" y1="{ly}" x2="{lx + 22}" y2="{ly}" stroke="{colour}" '
            f'stroke-width="2.5"{dash_attr}/>'
            f'<text x="{lx + 26}" y="{ly + 4}" class="val" fill="{colour}">{escape(version)}</text>'
            f'<text x="{lx + 26}" y="{ly + 18}" class="val" fill="{colour}">'
            f"{escape(_fmt(pts[-1][1], share))}</text>"
        )
    if not values:
        parts.append(
            f'<text x="{PAD_L + plot_w / 2}" y="{PAD_T + plot_h / 2}" class="lbl" '
            f'text-anchor="middle">no figures reported yet</text>'
        )
    return Markup(  # noqa: S704 - every interpolated text above is escaped
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f"{''.join(parts)}</svg>"
    )
