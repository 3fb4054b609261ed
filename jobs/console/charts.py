"""Charts as SVG drawn on the server: bars, stacked bars, histograms, lines and heat maps.

Why server-side SVG rather than a JavaScript chart library: the console must work on an isolated
server (no CDN) under a Content-Security-Policy that allows no script at all, and a vendored JS
library is code to keep patched. An SVG is text the browser draws; every mark carries a
``<title>`` so hovering shows the exact figure, and the same figures are in each page's JSON.

Only presentation attributes are used (``fill``, ``stroke``...), never ``style=""``, so the CSP
needs no ``'unsafe-inline'``. Every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

__all__ = ["PALETTE", "bars", "heatmap", "histogram", "lines", "stacked_bars"]

PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#9ca3af")
"""Colour-blind-friendly enough for up to nine series; the last, grey, for 'other'."""

_FONT = 11


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.0f}k"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def _axis(x0: int, y0: int, plot_w: int, plot_h: int, top: float, fmt: Callable[[float], str]) -> list[str]:
    parts = []
    for i in range(5):
        value = top * i / 4
        y = y0 - plot_h * i / 4
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(
            f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="{_FONT}" fill="#374151">'
            f"{escape(fmt(value))}</text>"
        )
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x0 + plot_w}" y2="{y0}" stroke="#6b7280"/>')
    return parts


def bars(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    label: str,
    width: int = 560,
    height: int = 220,
    color: str = PALETTE[0],
    fmt: Callable[[float], str] = _fmt,
) -> str:
    """Vertical bars, one per label."""
    return stacked_bars(
        labels, {label: values}, label=label, width=width, height=height, colors=[color], fmt=fmt
    )


def histogram(
    values: Sequence[float], *, bins: Sequence[float], label: str, width: int = 560, height: int = 220
) -> str:
    """Counts of ``values`` in the half-open ``bins`` (the last bin is closed)."""
    counts = [0] * (len(bins) - 1)
    for value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        for i in range(len(counts)):
            last = i == len(counts) - 1
            if bins[i] <= value < bins[i + 1] or (last and value == bins[i + 1]):
                counts[i] += 1
                break
    labels = [f"{_fmt(bins[i])}–{_fmt(bins[i + 1])}" for i in range(len(counts))]
    return bars(labels, counts, label=label, width=width, height=height)


def stacked_bars(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    label: str,
    width: int = 560,
    height: int = 240,
    colors: Sequence[str] = PALETTE,
    fmt: Callable[[float], str] = _fmt,
) -> str:
    """Bars per category, each stacked from the series (in order); a legend when several."""
    names = list(series)
    legend_h = 18 if len(names) > 1 else 0
    longest = max((len(str(c)[:16]) for c in categories), default=0)
    # Labels wider than their slot are drawn slanted, with room for them below the axis.
    slanted = longest * 6.5 > (width - 56) / max(len(categories), 1)
    label_h = int(longest * 4.6) + 16 if slanted else 20
    height += label_h - 20
    x0, y0 = 48, height - 14 - label_h - legend_h
    plot_w, plot_h = width - x0 - 8, y0 - 10
    totals = [sum(float(series[n][i] or 0) for n in names) for i in range(len(categories))]
    top = _nice_max(max(totals, default=0))
    body = _axis(x0, y0, plot_w, plot_h, top, fmt)
    slot = plot_w / max(len(categories), 1)
    bar_w = max(min(slot * 0.75, 60), 1)
    every = max(1, math.ceil(len(categories) / max(plot_w // 46, 1)))
    for i, category in enumerate(categories):
        x = x0 + slot * i + (slot - bar_w) / 2
        base = y0
        for k, name in enumerate(names):
            value = float(series[name][i] or 0)
            h = plot_h * value / top
            if h > 0:
                body.append(
                    f'<rect class="mark" x="{x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                    f'fill="{colors[k % len(colors)]}"><title>{escape(str(category))}'
                    f"{' · ' + escape(name) if len(names) > 1 else ''}: {escape(fmt(value))}</title></rect>"
                )
            base -= h
        if slanted:
            cx = x + bar_w / 2
            body.append(
                f'<text x="{cx:.1f}" y="{y0 + 12}" text-anchor="end" font-size="{_FONT}" fill="#374151" '
                f'transform="rotate(-40 {cx:.1f} {y0 + 12})">{escape(str(category)[:16])}</text>'
            )
        elif i % every == 0:
            body.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y0 + 14}" text-anchor="middle" font-size="{_FONT}" '
                f'fill="#374151">{escape(str(category)[:14])}</text>'
            )
    if legend_h:
        x = x0
        for k, name in enumerate(names):
            body.append(
                f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{colors[k % len(colors)]}"/>'
                f'<text x="{x + 14}" y="{height - 5}" font-size="{_FONT}" fill="#374151">'
                f"{escape(name)}</text>"
            )
            x += 24 + 7 * len(name)
    return _svg(width, height, label, body)


def lines(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    label: str,
    x_label: str,
    y_label: str,
    diagonal: bool = True,
    width: int = 320,
    height: int = 300,
) -> str:
    """Lines on a unit square (ROC, calibration), with the chance/perfect diagonal dashed."""
    x0, y0 = 44, height - 40
    size_w, size_h = width - x0 - 12, y0 - 12
    body = []
    for i in range(5):
        t = i / 4
        body.append(
            f'<line x1="{x0}" y1="{y0 - size_h * t:.1f}" x2="{x0 + size_w}" y2="{y0 - size_h * t:.1f}" '
            f'stroke="#e5e7eb"/><text x="{x0 - 4}" y="{y0 - size_h * t + 4:.1f}" text-anchor="end" '
            f'font-size="{_FONT}" fill="#374151">{t:.2f}</text>'
            f'<text x="{x0 + size_w * t:.1f}" y="{y0 + 14}" text-anchor="middle" font-size="{_FONT}" '
            f'fill="#374151">{t:.2f}</text>'
        )
    body.append(
        f'<rect x="{x0}" y="{y0 - size_h}" width="{size_w}" height="{size_h}" fill="none" stroke="#6b7280"/>'
    )
    if diagonal:
        body.append(
            f'<line x1="{x0}" y1="{y0}" x2="{x0 + size_w}" y2="{y0 - size_h}" stroke="#9ca3af" '
            'stroke-dasharray="4 4"/>'
        )
    for k, (name, points) in enumerate(series.items()):
        if not points:
            continue
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{x0 + size_w * x:.1f},{y0 - size_h * y:.1f}"
            for i, (x, y) in enumerate(points)
        )
        color = PALETTE[k % len(PALETTE)]
        body.append(f'<path class="mark" d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in points if len(points) <= 20 else ():
            body.append(
                f'<circle cx="{x0 + size_w * x:.1f}" cy="{y0 - size_h * y:.1f}" r="3" fill="{color}">'
                f"<title>{escape(name)}: {x:.3f}, {y:.3f}</title></circle>"
            )
    body.append(
        f'<text x="{x0 + size_w / 2}" y="{height - 6}" text-anchor="middle" font-size="{_FONT}" '
        f'fill="#111827">{escape(x_label)}</text>'
        f'<text x="12" y="{y0 - size_h / 2}" text-anchor="middle" font-size="{_FONT}" fill="#111827" '
        f'transform="rotate(-90 12 {y0 - size_h / 2})">{escape(y_label)}</text>'
    )
    return _svg(width, height, label, body)


def _shade(fraction: float) -> str:
    """White to the palette's blue, for heat-map cells."""
    f = min(max(fraction, 0.0), 1.0)
    r, g, b = (int(255 + (t - 255) * f) for t in (0x25, 0x63, 0xEB))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Sequence[Sequence[float]],
    *,
    label: str,
    notes: Sequence[Sequence[str]] | None = None,
    row_title: str = "",
    column_title: str = "",
    cell: int = 64,
    fmt: Callable[[float], str] = _fmt,
) -> str:
    """A grid coloured by value; each cell shows the value and, when given, a second line."""
    x0, y0 = 70, 24
    width = x0 + cell * len(columns) + 10
    height = y0 + cell * len(rows) + 40
    top = max((float(v or 0) for row in values for v in row), default=0) or 1.0
    body = []
    for r, row_name in enumerate(rows):
        y = y0 + r * cell
        body.append(
            f'<text x="{x0 - 6}" y="{y + cell / 2 + 4:.1f}" text-anchor="end" font-size="{_FONT}" '
            f'fill="#374151">{escape(str(row_name))}</text>'
        )
        for c, _column in enumerate(columns):
            value = float(values[r][c] or 0)
            x = x0 + c * cell
            dark = value / top > 0.55
            note = notes[r][c] if notes else ""
            body.append(
                f'<rect class="mark" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="{_shade(value / top)}"><title>{escape(row_title)} {escape(str(row_name))}, '
                f"{escape(column_title)} {escape(str(columns[c]))}: {escape(fmt(value))}"
                f"{' · ' + escape(note) if note else ''}</title></rect>"
                f'<text x="{x + cell / 2 - 1:.1f}" y="{y + cell / 2 - (3 if note else -4):.1f}" '
                f'text-anchor="middle" font-size="{_FONT + 1}" fill="{"#ffffff" if dark else "#111827"}">'
                f"{escape(fmt(value))}</text>"
            )
            if note:
                body.append(
                    f'<text x="{x + cell / 2 - 1:.1f}" y="{y + cell / 2 + 12:.1f}" text-anchor="middle" '
                    f'font-size="{_FONT - 2}" fill="{"#ffffff" if dark else "#374151"}">'
                    f"{escape(note[: max(8, cell // 6)])}</text>"
                )
    for c, column in enumerate(columns):
        body.append(
            f'<text x="{x0 + c * cell + cell / 2:.1f}" y="{y0 + cell * len(rows) + 14}" text-anchor="middle" '
            f'font-size="{_FONT}" fill="#374151">{escape(str(column))}</text>'
        )
    body.append(
        f'<text x="{x0 + cell * len(columns) / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'font-size="{_FONT}" fill="#111827">{escape(column_title)}</text>'
        f'<text x="{x0 - 6}" y="14" text-anchor="end" font-size="{_FONT}" fill="#111827">'
        f"{escape(row_title)}</text>"
    )
    return _svg(width, height, label, body)
