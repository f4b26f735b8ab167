"""Small inline SVG charts for the run report (no script, no external file)."""

from __future__ import annotations

from html import escape

__all__ = ["PALETTE", "bars", "histogram", "stacked"]

PALETTE = {"ok": "#2e7d32", "review": "#f9a825", "bad": "#c62828", "info": "#1565c0",
           "muted": "#90a4ae"}


def _fmt(n: float) -> str:
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.2f}"


def stacked(rows: list[tuple[str, list[tuple[str, float, str]]]], width: int = 640,
            label_width: int = 150) -> str:
    """One horizontal bar per row, split into (name, value, colour) segments by share."""
    bar_h, gap = 18, 8
    height = len(rows) * (bar_h + gap) + gap
    out = [f'<svg class="chart" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    span = width - label_width - 10
    for i, (label, segs) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        total = sum(v for _, v, _ in segs) or 1
        out.append(f'<text x="0" y="{y + 13}" font-size="12">{escape(label)}</text>')
        x = float(label_width)
        for name, v, colour in segs:
            w = span * v / total
            if w <= 0:
                continue
            out.append(f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h}" '
                       f'fill="{colour}"><title>{escape(name)}: {_fmt(v)}</title></rect>')
            x += w
    out.append("</svg>")
    return "".join(out)


def bars(items: list[tuple[str, float]], colour: str = PALETTE["info"], width: int = 640,
         label_width: int = 220, unit: str = "") -> str:
    """Horizontal bars, one per (label, value), with the value written after the bar."""
    bar_h, gap = 16, 6
    height = len(items) * (bar_h + gap) + gap
    top = max((v for _, v in items), default=0) or 1
    span = width - label_width - 90
    out = [f'<svg class="chart" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, v) in enumerate(items):
        y = gap + i * (bar_h + gap)
        w = span * v / top
        out.append(f'<text x="0" y="{y + 12}" font-size="12">{escape(label)}</text>')
        out.append(f'<rect x="{label_width}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h}" '
                   f'fill="{colour}"/>')
        out.append(f'<text x="{label_width + w + 4:.1f}" y="{y + 12}" font-size="12">'
                   f'{_fmt(v)}{escape(unit)}</text>')
    out.append("</svg>")
    return "".join(out)


def histogram(edges: list[float], series: list[tuple[str, list[int], str]],
              lines: list[tuple[str, float]], width: int = 640, height: int = 200) -> str:
    """A stacked histogram over ``edges`` (len = bins + 1) with labelled vertical lines."""
    left, bottom, top_pad = 50, 30, 20
    n = len(edges) - 1
    if n <= 0:
        return ""
    totals = [sum(s[1][i] for s in series) for i in range(n)]
    peak = max(totals) or 1
    lo, hi = edges[0], edges[-1]
    plot_w, plot_h = width - left - 10, height - bottom - top_pad

    def xpos(v: float) -> float:
        return left + plot_w * (v - lo) / ((hi - lo) or 1)

    out = [f'<svg class="chart" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
           f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" '
           f'y2="{top_pad + plot_h}" stroke="#555"/>',
           f'<text x="{left - 4}" y="{top_pad + 10}" font-size="11" text-anchor="end">'
           f'{peak:,}</text>',
           f'<text x="{left - 4}" y="{top_pad + plot_h}" font-size="11" text-anchor="end">0</text>']
    for i in range(n):
        x0, x1 = xpos(edges[i]), xpos(edges[i + 1])
        y = top_pad + plot_h
        for name, counts, colour in series:
            h = plot_h * counts[i] / peak
            if h <= 0:
                continue
            y -= h
            out.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
                       f'height="{h:.1f}" fill="{colour}"><title>{escape(name)} '
                       f'{edges[i]:.1f}–{edges[i + 1]:.1f}: {counts[i]:,}</title></rect>')
    for k in range(0, n + 1, max(1, n // 8)):
        out.append(f'<text x="{xpos(edges[k]):.1f}" y="{height - 12}" font-size="11" '
                   f'text-anchor="middle">{edges[k]:.0f}</text>')
    for label, v in lines:
        if lo <= v <= hi:
            x = xpos(v)
            out.append(f'<line x1="{x:.1f}" y1="{top_pad - 5}" x2="{x:.1f}" '
                       f'y2="{top_pad + plot_h}" stroke="#000" stroke-dasharray="4 3"/>'
                       f'<text x="{x + 3:.1f}" y="{top_pad}" font-size="11">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)
