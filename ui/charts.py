"""The page's pictures, drawn as SVG here: sharp at any width, light on a phone, one colour per meaning.

Two kinds: horizontal bars of test bits/char per model (with reference lines), and small multiples of
loss curves (one panel per model, one colour per split, the same scale in every panel).
"""
from __future__ import annotations

import html
import math

SPLIT_COLORS = {"train": "#4c78a8", "validation": "#f58518", "test": "#e45756"}
SERIES_COLORS = ("#4c78a8", "#54a24b", "#b279a2", "#9d755d", "#eeca3b", "#72b7b2")
LEGEND_PER_ROW = 3  # legend entries side by side in the 400-unit width


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round values spanning [lo, hi]."""
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9) / n))
    for mult in (1, 2, 2.5, 5, 10):
        if (hi - lo) / (step * mult) <= n:
            step *= mult
            break
    first = math.floor(lo / step) * step
    return [round(first + k * step, 6) for k in range(int((hi - first) / step) + 2) if first + k * step <= hi + 1e-9]


def bars(groups: list[tuple[str, dict[str, float]]], series: list[str], references: list[tuple[str, float]],
         unit: str = "bits/char") -> str:
    """Horizontal bars: for each (label, {series: value}) its label, then one bar per series it has; vertical
    dashed reference lines under them, labelled under the axis. Narrow (400 units) so that the text stays legible on a
    phone, where the picture is shown at its full width. A loss: the axis starts at 0."""
    width, left, right, bar_h, label_h, gap = 400, 6, 34, 11, 15, 8
    top = 22 + 14 * ((len(series) - 1) // LEGEND_PER_ROW)  # below the legend's rows
    values = [v for _, g in groups for v in g.values()] + [v for _, v in references]
    hi = max(values) * 1.05 if values else 1.0
    x = lambda v: left + (width - left - right) * v / hi  # noqa: E731
    axis = top + sum(label_h + len(g) * bar_h + gap for _, g in groups)
    height = axis + 18 + 12 * len(references)
    out = [f"<svg viewBox='0 0 {width} {height}' role='img' class='chart bars' aria-label='test {unit} per model'>"]
    for k, name in enumerate(series):  # the legend, on top
        lx, ly = left + 130 * (k % LEGEND_PER_ROW), 4 + 14 * (k // LEGEND_PER_ROW)
        out.append(f"<rect x='{lx}' y='{ly}' width='10' height='10' fill='{SERIES_COLORS[k]}'/>"
                   f"<text x='{lx + 14}' y='{ly + 9}' class='small'>{html.escape(name)}</text>")
    for t in _nice_ticks(0, hi):
        out.append(f"<line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='{top}' y2='{axis}' class='grid'/>"
                   f"<text x='{x(t):.1f}' y='{axis + 11}' text-anchor='middle' class='small'>{t:g}</text>")
    # The references under the bars, each labelled on a row of its own, the smallest first: a label ends at its
    # line, so the lines of the larger values, further right, never cross it.
    for k, (label, v) in enumerate(sorted(references, key=lambda r: r[1])):
        out.append(f"<line x1='{x(v):.1f}' x2='{x(v):.1f}' y1='{top}' y2='{axis + 16 + 12 * k}' class='ref'/>"
                   f"<text x='{x(v) - 3:.1f}' y='{axis + 25 + 12 * k}' text-anchor='end' class='small'>"
                   f"{html.escape(label)}: {v:g} {unit}</text>")
    y = top
    for label, group in groups:
        out.append(f"<text x='{left}' y='{y + 11}' class='label'>{html.escape(label)}</text>")
        y += label_h
        for k, name in enumerate(series):
            if name in group:
                v = group[name]
                out.append(f"<rect x='{left}' y='{y}' width='{x(v) - left:.1f}' height='{bar_h - 2}' "
                           f"fill='{SERIES_COLORS[k]}'><title>{html.escape(label)}, {html.escape(name)}: {v:.3f} "
                           f"{unit}</title></rect><text x='{x(v) + 3:.1f}' y='{y + bar_h - 3}' class='small value'>"
                           f"{v:.2f}</text>")
                y += bar_h
        y += gap
    out.append("</svg>")
    return "".join(out)


def curves(panels: list[tuple[str, dict[str, list[tuple[float, float]]]]], unit: str = "bits/char") -> str:
    """Small multiples: one panel per (title, {split: [(epoch, value)]}), the same axes in every panel, so
    that the panels compare; they wrap, two or three to a row on a desktop, one on a phone."""
    points = [p for _, splits in panels for line in splits.values() for p in line]
    if not points:
        return "<p>No model here recorded its losses during training.</p>"
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    lo, hi = lo - 0.05 * (hi - lo or 1), hi + 0.05 * (hi - lo or 1)
    w, h, left, bottom, top = 300, 170, 40, 24, 8
    out = ["<div class='panels'>"]
    for title, splits in panels:
        last = max((e for line in splits.values() for e, _ in line), default=1.0) or 1.0
        x = lambda e: left + (w - left - 8) * e / last  # noqa: E731
        y = lambda v: top + (h - top - bottom) * (hi - v) / (hi - lo)  # noqa: E731
        svg = [f"<figure class='panel'><figcaption>{html.escape(title)}</figcaption>"
               f"<svg viewBox='0 0 {w} {h}' class='chart' role='img' aria-label='{html.escape(title)}'>"]
        for t in (t for t in _nice_ticks(lo, hi, 4) if lo <= t <= hi):
            svg.append(f"<line x1='{left}' x2='{w - 8}' y1='{y(t):.1f}' y2='{y(t):.1f}' class='grid'/>"
                       f"<text x='{left - 4}' y='{y(t) + 4:.1f}' text-anchor='end' class='small'>{t:g}</text>")
        for t in _nice_ticks(0, last, 5):
            if t == int(t) and t > 0:  # epochs are whole numbers, the first evaluation after epoch 1
                svg.append(f"<text x='{x(t):.1f}' y='{h - 8}' text-anchor='middle' class='small'>{int(t)}</text>")
        for split, line in splits.items():
            path = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in line)
            svg.append(f"<polyline points='{path}' fill='none' stroke='{SPLIT_COLORS[split]}' stroke-width='2'>"
                       f"<title>{html.escape(split)}</title></polyline>")
        svg.append("</svg></figure>")
        out.append("".join(svg))
    legend = "".join(f"<span><i style='background:{c}'></i>{s}</span>" for s, c in SPLIT_COLORS.items())
    out.append(f"</div><div class='chart-legend'>{legend} · loss in {unit} against epochs</div>")
    return "".join(out)


def decay(series: list[tuple[str, list[float]]], floor: int = -6, title: str = "") -> str:
    """Lines of values that fall by orders of magnitude (one per (name, values), values[i] at x = i + 1), on a
    log scale from 1 down to 10^floor, with dashed lines at 10 % and 1 %; a line leaving the bottom is cut
    there, not flattened."""
    w, h, left, right, top, bottom = 400, 230, 44, 8, 24, 30
    n = max((len(v) for _, v in series), default=1)
    x = lambda k: left + (w - left - right) * (k - 1) / max(n - 1, 1)  # noqa: E731
    y = lambda v: top + (h - top - bottom) * -v / -floor  # v = log10 of the value  # noqa: E731
    colors = SERIES_COLORS + ("#e45756", "#f58518", "#72b7b2")
    out = [f"<svg viewBox='0 0 {w} {h}' class='chart decay' role='img' aria-label='{html.escape(title)}'>",
           f"<clipPath id='decay-clip'><rect x='{left}' y='{top}' width='{w - left - right}' "
           f"height='{h - top - bottom}'/></clipPath>"]
    if title:
        out.append(f"<text x='{left}' y='14' class='title'>{html.escape(title)}</text>")
    for e in range(0, floor - 1, -1):
        label = {0: "1", -1: "10 %", -2: "1 %", -3: "0.1 %"}.get(e, f"1e{e}")
        out.append(f"<line x1='{left}' x2='{w - right}' y1='{y(e):.1f}' y2='{y(e):.1f}' "
                   f"class='{'ref' if e in (-1, -2) else 'grid'}'/><text x='{left - 4}' y='{y(e) + 4:.1f}' "
                   f"text-anchor='end' class='small'>{label}</text>")
    for k in _nice_ticks(0, n, 4):
        if k >= 1:
            out.append(f"<text x='{x(k):.1f}' y='{h - 16}' text-anchor='middle' class='small'>{k:g}</text>")
    out.append(f"<text x='{(left + w) / 2:.0f}' y='{h - 3}' text-anchor='middle' class='small'>characters back</text>")
    out.append("<g clip-path='url(#decay-clip)'>")
    for (name, values), color in zip(series, colors):
        # A value of 0 (an underflow) is drawn off the chart: the line goes down through the floor.
        path = " ".join(f"{x(k):.1f},{y(math.log10(v) if v > 0 else floor - 1):.1f}" for k, v in enumerate(values, 1))
        out.append(f"<polyline points='{path}' fill='none' stroke='{color}' stroke-width='2'>"
                   f"<title>{html.escape(name)}</title></polyline>")
    out.append("</g></svg>")
    legend = "".join(f"<span><i style='background:{c}'></i>{html.escape(name)}</span>"
                     for (name, _), c in zip(series, colors))
    return "".join(out) + f"<div class='chart-legend'>{legend}</div>"


def speeds(panels: list[tuple[str, dict[str, list[tuple[int, float]]]]], unit: str = "characters/s") -> str:
    """Small multiples on log-log axes: one panel per (title, {model: [(sequence length, rate)]}), the same axes
    in every panel, one colour per model (a rate over orders of magnitude, lengths doubling)."""
    points = [p for _, lines in panels for line in lines.values() for p in line]
    if not points:
        return "<p>No training-cost figures are recorded.</p>"
    lo, hi = math.floor(math.log10(min(v for _, v in points))), math.ceil(math.log10(max(v for _, v in points)))
    hi = max(hi, lo + 1)
    lengths = sorted({t for t, _ in points})
    first, last = math.log2(lengths[0]), math.log2(lengths[-1]) if len(lengths) > 1 else math.log2(lengths[0]) + 1
    w, h, left, bottom, top = 300, 170, 46, 24, 8
    x = lambda t: left + (w - left - 12) * (math.log2(t) - first) / (last - first)  # noqa: E731
    y = lambda v: top + (h - top - bottom) * (hi - math.log10(v)) / (hi - lo)  # noqa: E731
    names = list(dict.fromkeys(n for _, lines in panels for n in lines))
    out = ["<div class='panels'>"]
    for title, lines in panels:
        svg = [f"<figure class='panel'><figcaption>{html.escape(title)}</figcaption>"
               f"<svg viewBox='0 0 {w} {h}' class='chart' role='img' aria-label='{html.escape(title)}'>"]
        for e in range(lo, hi + 1):
            svg.append(f"<line x1='{left}' x2='{w - 8}' y1='{y(10 ** e):.1f}' y2='{y(10 ** e):.1f}' class='grid'/>"
                       f"<text x='{left - 4}' y='{y(10 ** e) + 4:.1f}' text-anchor='end' class='small'>"
                       f"{10 ** e:,}</text>")
        for t in lengths:
            svg.append(f"<text x='{x(t):.1f}' y='{h - 8}' text-anchor='middle' class='small'>{t}</text>")
        for name, line in lines.items():
            color = SERIES_COLORS[names.index(name) % len(SERIES_COLORS)]
            path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in sorted(line))
            svg.append(f"<polyline points='{path}' fill='none' stroke='{color}' stroke-width='2'>"
                       f"<title>{html.escape(name)}</title></polyline>")
        svg.append("</svg></figure>")
        out.append("".join(svg))
    legend = "".join(f"<span><i style='background:{SERIES_COLORS[k % len(SERIES_COLORS)]}'></i>{html.escape(n)}</span>"
                     for k, n in enumerate(names))
    out.append(f"</div><div class='chart-legend'>{legend} · {unit} against the sequence length</div>")
    return "".join(out)
