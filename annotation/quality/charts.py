"""Small server-rendered SVG charts for the dashboards: no JavaScript, no chart library.

Every label goes through ``escape``; numbers are formatted by us, so the markup is safe to
``mark_safe``.
"""

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 640
BAR_HEIGHT = 22
PAD = 40


def line_chart(points: Sequence[tuple[str, float]], *, title: str, height: int = 220) -> SafeString:
    """A line through (label, value) points in order, e.g. cumulative judgements by day."""
    if not points:
        return mark_safe(f'<p class="muted">{escape(title)}: nothing yet.</p>')
    top = max(value for _, value in points) or 1
    inner_w, inner_h = WIDTH - 2 * PAD, height - 2 * PAD
    step = inner_w / max(1, len(points) - 1)
    coords = [
        (PAD + i * step, PAD + inner_h - (value / top) * inner_h) for i, (_, value) in enumerate(points)
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{escape(label)}: {value:g}</title></circle>'
        for (x, y), (label, value) in zip(coords, points, strict=True)
    )
    first, last = escape(points[0][0]), escape(points[-1][0])
    return mark_safe(
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<line x1="{PAD}" y1="{PAD + inner_h}" x2="{PAD + inner_w}" y2="{PAD + inner_h}" class="axis"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{PAD + inner_h}" class="axis"/>'
        f'<text x="{PAD - 4}" y="{PAD + 4}" text-anchor="end">{top:g}</text>'
        f'<text x="{PAD - 4}" y="{PAD + inner_h}" text-anchor="end">0</text>'
        f'<text x="{PAD}" y="{height - 12}">{first}</text>'
        f'<text x="{PAD + inner_w}" y="{height - 12}" text-anchor="end">{last}</text>'
        f'<polyline points="{path}" fill="none" class="series"/>{dots}</svg>'
    )


def bar_chart(
    bars: Sequence[tuple[str, float | None]],
    *,
    title: str,
    maximum: float = 1.0,
    minimum: float = 0.0,
    reference: float | None = None,
) -> SafeString:
    """Horizontal bars, one per (label, value); None draws no bar and says "n/a".

    ``reference`` draws a dashed line, e.g. 0.5 for position bias or the gold threshold.
    """
    if not bars:
        return mark_safe(f'<p class="muted">{escape(title)}: nothing yet.</p>')
    label_w = 140
    inner_w = WIDTH - label_w - PAD
    height = PAD + len(bars) * BAR_HEIGHT + 10
    span = (maximum - minimum) or 1.0

    def x(value: float) -> float:
        return label_w + (min(max(value, minimum), maximum) - minimum) / span * inner_w

    rows = []
    for i, (label, value) in enumerate(bars):
        y = PAD + i * BAR_HEIGHT
        rows.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        if value is None:
            rows.append(f'<text x="{label_w + 4}" y="{y + 15}" class="muted">n/a</text>')
            continue
        zero = x(max(minimum, 0.0))
        left, right = sorted((zero, x(value)))
        rows.append(
            f'<rect x="{left:.1f}" y="{y + 3}" width="{max(right - left, 1):.1f}" height="{BAR_HEIGHT - 6}" '
            f'class="bar"><title>{escape(label)}: {value:.3f}</title></rect>'
            f'<text x="{right + 4:.1f}" y="{y + 15}">{value:.2f}</text>'
        )
    if reference is not None:
        rx = x(reference)
        rows.append(
            f'<line x1="{rx:.1f}" y1="{PAD - 6}" x2="{rx:.1f}" y2="{height - 6}" class="reference"/>'
            f'<text x="{rx:.1f}" y="{PAD - 10}" text-anchor="middle">{reference:g}</text>'
        )
    return mark_safe(
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(rows)}</svg>'
    )
