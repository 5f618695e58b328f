"""Charts for the HTML pack as plain geometry: rectangles, lines, text, with a tooltip each.

Pure: no markup here. templates/reports/_chart.html.j2 draws a Chart as inline SVG, so the
pack needs no JavaScript, no charting library and no network, and prints as crisply as text.
Colours are the Okabe–Ito palette, which stays distinguishable for colour-blind readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442")
INK, GRID, MUTED = "#222222", "#d0d0d0", "#555555"
Number = int | float | Decimal


@dataclass(frozen=True)
class Shape:
    kind: str  # rect | line | polyline | circle | text
    attrs: dict[str, str]
    text: str = ""  # the words of a text shape
    tip: str = ""  # a <title> tooltip, and what a screen reader announces
    role: str = ""  # "mark" for shapes that carry data (the tests look for them)


@dataclass
class Chart:
    id: str
    title: str
    description: str
    width: int
    height: int
    shapes: list[Shape] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (label, colour)

    def add(self, kind: str, text: str = "", tip: str = "", role: str = "", **attrs) -> None:
        clean = {k.rstrip("_").replace("_", "-"): _fmt(v) for k, v in attrs.items()}
        self.shapes.append(Shape(kind, clean, text, tip, role))

    @property
    def marks(self) -> list[Shape]:
        return [s for s in self.shapes if s.role == "mark"]


def _fmt(value: object) -> str:
    if isinstance(value, float | Decimal):
        return f"{float(value):.1f}".rstrip("0").rstrip(".")
    return str(value)


def _percent_axis(chart: Chart, left: float, top: float, right: float, bottom: float) -> None:
    for pct in (0, 25, 50, 75, 100):
        y = bottom - (bottom - top) * pct / 100
        chart.add("line", x1=left, y1=y, x2=right, y2=y, stroke=GRID, stroke_width=1)
        chart.add(
            "text", f"{pct}%", x=left - 6, y=y + 4, text_anchor="end", font_size=11, fill=MUTED
        )


def line_chart(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number | None]]],
    width: int = 720,
    height: int = 300,
) -> Chart:
    """Percentages over time: one line per series, a dot per value, gaps where there is none."""
    chart = Chart(
        chart_id, title, f"{title}: {', '.join(n for n, _ in series)} by period", width, height
    )
    left, top, right, bottom = 48, 16, width - 12, height - 58
    _percent_axis(chart, left, top, right, bottom)
    step = (right - left) / max(len(categories), 1)
    every = max(1, round(len(categories) / 16))  # at most ~16 labels along the axis
    for i, label in enumerate(categories):
        if i % every == 0:
            x = left + step * (i + 0.5)
            chart.add(
                "text",
                label,
                x=x,
                y=bottom + 14,
                text_anchor="end",
                font_size=11,
                fill=MUTED,
                transform=f"rotate(-40 {_fmt(x)} {_fmt(bottom + 14)})",
            )
    for n, (name, values) in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        chart.legend.append((name, colour))
        points: list[str] = []
        for i, value in enumerate(values):
            if value is None:
                _polyline(chart, points, colour)
                points = []
                continue
            x, y = left + step * (i + 0.5), bottom - (bottom - top) * float(value) / 100
            points.append(f"{_fmt(x)},{_fmt(y)}")
            chart.add(
                "circle",
                tip=f"{categories[i]}: {name} {_fmt(value)}%",
                role="mark",
                cx=x,
                cy=y,
                r=3.5,
                fill=colour,
            )
        _polyline(chart, points, colour)
    chart.add("line", x1=left, y1=bottom, x2=right, y2=bottom, stroke=INK, stroke_width=1)
    return chart


def _polyline(chart: Chart, points: list[str], colour: str) -> None:
    if len(points) > 1:
        chart.add("polyline", points=" ".join(points), fill="none", stroke=colour, stroke_width=2)


def stacked_bars(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    segments: Sequence[tuple[str, Sequence[int]]],
    width: int = 720,
) -> Chart:
    """Horizontal bars, one per category, split into coloured segments (e.g. age bands)."""
    bar, gap, label_width = 18, 8, 170
    height = 24 + len(categories) * (bar + gap) + 30
    chart = Chart(
        chart_id, title, f"{title}, by {', '.join(n for n, _ in segments)}", width, height
    )
    left, right, top = label_width, width - 50, 12
    totals = [sum(values[i] for _, values in segments) for i in range(len(categories))]
    scale = (right - left) / max(max(totals, default=0), 1)
    for name, _ in segments:
        chart.legend.append((name, PALETTE[len(chart.legend) % len(PALETTE)]))
    for i, category in enumerate(categories):
        y = top + i * (bar + gap)
        chart.add(
            "text", category, x=left - 8, y=y + bar - 5, text_anchor="end", font_size=12, fill=INK
        )
        x = float(left)
        for n, (name, values) in enumerate(segments):
            if values[i]:
                w = values[i] * scale
                chart.add(
                    "rect",
                    tip=f"{category}: {values[i]} {name}",
                    role="mark",
                    x=x,
                    y=y,
                    width=w,
                    height=bar,
                    fill=PALETTE[n % len(PALETTE)],
                )
                x += w
        chart.add("text", str(totals[i]), x=x + 6, y=y + bar - 5, font_size=11, fill=MUTED)
    base = top + len(categories) * (bar + gap)
    chart.add("line", x1=left, y1=top - 4, x2=left, y2=base, stroke=INK, stroke_width=1)
    return chart


def grouped_bars(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number | None]]],
    width: int = 720,
    height: int = 320,
) -> Chart:
    """Percentages as vertical bars: a group per category, a bar per series (e.g. quarters)."""
    chart = Chart(chart_id, title, f"{title}: {', '.join(n for n, _ in series)}", width, height)
    # A wide left margin: the first group's slanted label reaches back past the axis.
    left, top, right, bottom = 96, 16, width - 12, height - 92
    _percent_axis(chart, left, top, right, bottom)
    group = (right - left) / max(len(categories), 1)
    bar = group * 0.8 / max(len(series), 1)
    for n, (name, _) in enumerate(series):
        chart.legend.append((name, PALETTE[n % len(PALETTE)]))
    for i, category in enumerate(categories):
        x0 = left + group * i + group * 0.1
        for n, (name, values) in enumerate(series):
            value = values[i]
            if value is None:
                continue
            h = (bottom - top) * float(value) / 100
            chart.add(
                "rect",
                tip=f"{category}, {name}: {_fmt(value)}%",
                role="mark",
                x=x0 + n * bar,
                y=bottom - h,
                width=max(bar - 1, 1),
                height=max(h, 0.5),
                fill=PALETTE[n % len(PALETTE)],
            )
        x = left + group * (i + 0.5)
        chart.add(
            "text",
            category,
            x=x,
            y=bottom + 14,
            text_anchor="end",
            font_size=11,
            fill=INK,
            transform=f"rotate(-35 {_fmt(x)} {_fmt(bottom + 14)})",
        )
    chart.add("line", x1=left, y1=bottom, x2=right, y2=bottom, stroke=INK, stroke_width=1)
    return chart
