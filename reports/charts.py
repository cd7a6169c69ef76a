"""Hand-written SVG charts shared by the web pages and the PDF reports, each with a plain-text and a table alternative.

Every function returns autoescaped markup (``markupsafe.Markup``, a ``str``): the SVG is rendered from one Jinja
template with autoescape on, so labels, names and evidence text supplied by callers are never interpreted as markup.
Output is deterministic: the same input gives byte-identical SVG.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from markupsafe import Markup

from reports.templating import DASH, format_number, get_environment
from services.i18n import ENGLISH, N_, Translator

Severity = Literal["alert", "warning", "good", "info"]
AxisSide = Literal["left", "right"]
ValueFormat = Callable[[float], str]

FONT_SIZE = 10.0
SMALL_SIZE = 9.0
CHAR_WIDTH = 0.6  # DejaVu Sans averages about 0.55-0.62 em per character; err wide so labels never touch
POINTS_DRAWN_UP_TO = 40  # beyond this, series are drawn as lines only (markers are always drawn)
# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies, and dashes for greyscale print.
PALETTE = ("#1f4e79", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#666666")
DASHES = ("", "6 3", "2 2", "8 3 2 3", "1 3", "4 2 1 2", "10 3")
INK = "#1d2733"
MUTED = "#5b6673"
GRID = "#e2e6eb"
AXIS = "#9aa4af"
BAND_FILL = "#d8e4f0"
EXPECTED_FILL = "#cfe8dc"
SEVERITY_COLOURS: dict[str, str] = {
    "alert": "#c0392b",
    "warning": "#d68910",
    "good": "#1e8449",
    "info": "#5b6673",
}
SEVERITY_RANK: dict[str, int] = {"alert": 3, "warning": 2, "good": 1, "info": 0}
# English msgids: charts translate them with the Translator they are given (services.i18n).
SEVERITY_WORDS: dict[str, str] = {
    "alert": N_("alert"),
    "warning": N_("warning"),
    "good": N_("repair or improvement"),
    "info": N_("note"),
}
TENSION_WORDS = (N_("none"), N_("a little"), N_("somewhat"), N_("a lot"))


def format_plain(value: float) -> str:
    """Format a value with up to two decimals and no trailing zeros ("36", "35.75", "5.4")."""
    text = format_number(value, 2)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


@dataclass(frozen=True)
class Series:
    """One line: a name for the legend and one value per x position (None where there is no value)."""

    name: str
    values: tuple[float | None, ...]
    axis: AxisSide = "left"
    emphasis: bool = False

    def __post_init__(self) -> None:
        values = tuple(None if v is None else float(v) for v in self.values)
        for v in values:
            if v is not None and not math.isfinite(v):
                raise ValueError(f"series {self.name!r} has a non-finite value; use None for a missing value")
        object.__setattr__(self, "values", values)


@dataclass(frozen=True)
class Marker:
    """A signal at one x position of one series, shown as a symbol with its evidence on hover and in text."""

    index: int
    label: str
    evidence: str = ""
    series: int = 0
    severity: Severity = "alert"


@dataclass(frozen=True)
class Band:
    """A horizontal shaded band, e.g. the no-reliable-change band around a first score."""

    lo: float
    hi: float
    label: str


@dataclass(frozen=True)
class Threshold:
    """A horizontal reference line, e.g. a clinical cutoff."""

    value: float
    label: str


@dataclass(frozen=True)
class TrendValue:
    """One month of a trend: a label, a value (None when there is none) and an optional interval."""

    label: str
    value: float | None
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True)
class Bar:
    """One horizontal bar with an optional interval; value None shows the note (e.g. "fewer than 5") instead."""

    label: str
    value: float | None
    lo: float | None = None
    hi: float | None = None
    note: str = ""


@dataclass(frozen=True)
class _Shape:
    tag: str
    attrs: tuple[tuple[str, str], ...]
    text: str | None = None
    title: str | None = None


@dataclass
class _Scene:
    kind: str
    chart_id: str
    width: int
    height: int
    title: str
    desc: str
    shapes: list[_Shape] = field(default_factory=list)

    def add(self, tag: str, /, *, text: str | None = None, title: str | None = None, **attrs: object) -> None:
        pairs = tuple(
            (name.rstrip("_").replace("_", "-"), _attr(value)) for name, value in attrs.items() if value is not None
        )
        self.shapes.append(_Shape(tag, pairs, text, title))

    def label(
        self,
        x: float,
        y: float,
        text: str,
        *,
        anchor: str = "start",
        size: float = FONT_SIZE,
        fill: str = MUTED,
        weight: str | None = None,
        title: str | None = None,
    ) -> None:
        self.add(
            "text",
            text=text,
            title=title,
            x=x,
            y=y,
            text_anchor=anchor,
            font_size=size if size != FONT_SIZE else None,
            font_weight=weight,
            fill=fill,
        )


def _num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _attr(value: object) -> str:
    if isinstance(value, bool):
        raise TypeError("boolean SVG attributes are not used")
    if isinstance(value, int | float):
        return _num(float(value))
    return str(value)


def _text_width(text: str, size: float = FONT_SIZE) -> float:
    return len(text) * size * CHAR_WIDTH


def _truncate(text: str, max_width: float, size: float = FONT_SIZE) -> str:
    max_chars = max(int(max_width / (size * CHAR_WIDTH)), 2)
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "\u2026"


_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def _chart_id(kind: str, *parts: object) -> str:
    # Formatter functions appear in the specs' repr with their memory address: drop it, so ids are stable.
    stable = _ADDRESS.sub("", repr((kind, *parts)))
    digest = hashlib.sha256(stable.encode("utf-8")).hexdigest()
    return f"rpc-{kind}-{digest[:10]}"


def _render(scene: _Scene) -> Markup:
    template = get_environment().get_template("charts/scene.svg")
    return Markup(template.render(scene=scene))  # noqa: S704 - rendered by an autoescaping template


def _render_table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Markup:
    template = get_environment().get_template("charts/table.html")
    return Markup(template.render(caption=caption, headers=headers, rows=rows))  # noqa: S704 - autoescaped


def nice_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Return round tick values covering [lo, hi] (0, 10, 20, 30, 40 for 0-40), at most max_ticks of them."""
    if not hi > lo:
        raise ValueError("the axis maximum must be above its minimum")
    span = hi - lo
    raw = span / max(max_ticks - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = 10 * magnitude
    for multiple in (1, 2, 2.5, 5, 10):
        if span / (multiple * magnitude) <= max_ticks - 1 + 1e-9:
            step = multiple * magnitude
            break
    first = math.ceil(lo / step - 1e-9)
    ticks: list[float] = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 10))
        k += 1
    return ticks


def nice_ceiling(value: float, max_ticks: int = 5) -> float:
    """Return a round axis maximum at or above value (65 -> 80 with 5 ticks; 0 -> 1)."""
    if not value > 0:
        return 1.0
    ticks = nice_ticks(0.0, value, max_ticks)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else value
    exact = math.ceil(value / step - 1e-9) * step
    tidy = round(exact, 10)  # 0.30000000000000004 -> 0.3, unless that would fall below the value
    return tidy if tidy >= value else max(exact, value)


def thin_labels(
    positions: Sequence[float],
    labels: Sequence[str],
    *,
    size: float = FONT_SIZE,
    anchor: Literal["start", "end"] = "start",
) -> list[int]:
    """Choose which x labels to show so that none overlap: the anchored end first, then round steps."""
    n = len(labels)
    if n == 0:
        return []
    gap = size * 0.8
    widest = max(_text_width(label, size) for label in labels)
    spacing = (positions[-1] - positions[0]) / (n - 1) if n > 1 else widest
    needed = (widest + gap) / spacing if spacing > 0 else float(n)
    # months (anchored at the end) step by quarters and halves; sessions by round numbers
    steps = (1, 2, 3, 4, 6, 12, 24, 36, 60, 120) if anchor == "end" else (1, 2, 5, 10, 20, 25, 50, 100, 200, 500)
    step = next((s for s in steps if s >= needed), n)
    if anchor == "end":  # e.g. months: always the latest, then every step-th back from it
        candidates = [i for i in range(n - 1, -1, -1) if (n - 1 - i) % step == 0] + [0]
    else:  # e.g. sessions: 1, then 5, 10, 15 ... and the last
        candidates = [0, n - 1] + [i for i in range(n) if (i + 1) % step == 0]
    chosen: list[int] = []
    spans: list[tuple[float, float]] = []
    for i in candidates:
        if i in chosen:
            continue
        half = _text_width(labels[i], size) / 2
        lo, hi = positions[i] - half, positions[i] + half
        if all(hi + gap <= a or lo >= b + gap for a, b in spans):
            chosen.append(i)
            spans.append((lo, hi))
    return sorted(chosen)


# ---------------------------------------------------------------------------------------------------------------
# Line charts (per-session series) and trend charts (12 months)


@dataclass(frozen=True)
class _LegendEntry:
    kind: Literal["line", "band", "expected", "threshold", "marker", "tension"]
    label: str
    colour: str = INK
    dash: str = ""
    emphasis: bool = False
    severity: str = "info"


def _legend_rows(entries: Sequence[_LegendEntry], width: float) -> list[list[tuple[_LegendEntry, float, str]]]:
    rows: list[list[tuple[_LegendEntry, float, str]]] = [[]]
    x = 0.0
    for entry in entries:
        text = _truncate(entry.label, width * 0.45, SMALL_SIZE)
        entry_width = 22 + _text_width(text, SMALL_SIZE) + 12
        if rows[-1] and x + entry_width > width:
            rows.append([])
            x = 0.0
        rows[-1].append((entry, x, text))
        x += entry_width
    return [row for row in rows if row]


def _draw_legend(scene: _Scene, rows: list[list[tuple[_LegendEntry, float, str]]], left: float, top: float) -> None:
    for r, row in enumerate(rows):
        y = top + r * 14 + 7
        for entry, offset, text in row:
            x = left + offset
            if entry.kind == "line":
                scene.add(
                    "line",
                    x1=x,
                    y1=y,
                    x2=x + 18,
                    y2=y,
                    stroke=entry.colour,
                    stroke_width=2.4 if entry.emphasis else 1.6,
                    stroke_dasharray=entry.dash or None,
                )
            elif entry.kind in ("band", "expected"):
                scene.add(
                    "rect",
                    x=x,
                    y=y - 5,
                    width=18,
                    height=10,
                    fill=BAND_FILL if entry.kind == "band" else EXPECTED_FILL,
                )
            elif entry.kind == "threshold":
                scene.add("line", x1=x, y1=y, x2=x + 18, y2=y, stroke=entry.colour, stroke_dasharray="4 3")
            elif entry.kind == "marker":
                _marker_symbol(scene, x + 9, y, entry.severity)
            else:
                scene.add("rect", x=x + 5, y=y - 4, width=8, height=8, fill=SEVERITY_COLOURS["warning"])
            title = entry.label if text != entry.label else None
            scene.label(x + 22, y + 3.2, text, size=SMALL_SIZE, fill=INK, title=title)


def _marker_symbol(scene: _Scene, x: float, y: float, severity: str, title: str | None = None) -> None:
    colour = SEVERITY_COLOURS.get(severity, SEVERITY_COLOURS["info"])
    if severity == "alert":  # diamond
        points = (
            f"{_num(x)},{_num(y - 5.5)} {_num(x + 5.5)},{_num(y)} {_num(x)},{_num(y + 5.5)} {_num(x - 5.5)},{_num(y)}"
        )
        scene.add("polygon", title=title, points=points, fill=colour, stroke="#ffffff", stroke_width=1)
    elif severity == "warning":  # triangle
        points = f"{_num(x)},{_num(y - 5.5)} {_num(x + 5.5)},{_num(y + 4)} {_num(x - 5.5)},{_num(y + 4)}"
        scene.add("polygon", title=title, points=points, fill=colour, stroke="#ffffff", stroke_width=1)
    elif severity == "good":  # ring
        scene.add("circle", title=title, cx=x, cy=y, r=4.2, fill="#ffffff", stroke=colour, stroke_width=2.2)
    else:  # square
        scene.add("rect", title=title, x=x - 3.8, y=y - 3.8, width=7.6, height=7.6, fill=colour, stroke="#ffffff")


def _segments(xs: Sequence[float], ys: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    segments: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for x, y in zip(xs, ys, strict=True):
        if y is None:
            if current:
                segments.append(current)
            current = []
        else:
            current.append((x, y))
    if current:
        segments.append(current)
    return segments


def _path(points: Sequence[tuple[float, float]]) -> str:
    head, *rest = points
    return "M" + f"{_num(head[0])} {_num(head[1])}" + "".join(f"L{_num(x)} {_num(y)}" for x, y in rest)


def _band_path(xs: Sequence[float], bounds: Sequence[tuple[float, float]]) -> str:
    upper = [(x, hi) for x, (_, hi) in zip(xs, bounds, strict=True)]
    lower = [(x, lo) for x, (lo, _) in zip(xs, bounds, strict=True)]
    return _path(upper + lower[::-1]) + "Z"


def _check_same_length(name: str, values: Sequence[object], n: int) -> None:
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} values for {n} x positions")


@dataclass(frozen=True)
class _LineSpec:
    kind: str
    series: tuple[Series, ...]
    y_min: float
    y_max: float
    title: str
    x_labels: tuple[str, ...]
    x_title: str
    cutoff: Threshold | None
    band: Band | None
    expected: tuple[tuple[float, float] | None, ...] | None
    expected_label: str
    markers: tuple[Marker, ...]
    tension: tuple[int | None, ...] | None
    y2: tuple[float, float] | None
    y_label: str
    y2_label: str
    tick_format: ValueFormat
    value_format: ValueFormat
    annotate_last: bool
    width: int
    height: int
    legend: bool = True
    label_anchor: Literal["start", "end"] = "start"
    tr: Translator = ENGLISH


def _validate_line(spec: _LineSpec) -> None:
    n = len(spec.x_labels)
    if not spec.series:
        raise ValueError("a line chart needs at least one series")
    if not spec.y_max > spec.y_min:
        raise ValueError("y_max must be above y_min")
    if spec.y2 is not None and not spec.y2[1] > spec.y2[0]:
        raise ValueError("the right axis maximum must be above its minimum")
    for s in spec.series:
        _check_same_length(f"series {s.name!r}", s.values, n)
        if s.axis == "right" and spec.y2 is None:
            raise ValueError(f"series {s.name!r} uses the right axis but no y2 range was given")
    if spec.expected is not None:
        _check_same_length("expected_band", spec.expected, n)
    if spec.tension is not None:
        _check_same_length("tension", spec.tension, n)
        for t in spec.tension:
            if t is not None and not 0 <= t <= 3:
                raise ValueError("tension answers run from 0 to 3")
    for m in spec.markers:
        if not 0 <= m.index < n:
            raise ValueError(f"marker {m.label!r} is at index {m.index}, outside 0..{n - 1}")
        if not 0 <= m.series < len(spec.series):
            raise ValueError(f"marker {m.label!r} names series {m.series}, which does not exist")
        if m.severity not in SEVERITY_COLOURS:
            raise ValueError(f"unknown marker severity {m.severity!r}")
    if spec.width < 120 or spec.height < 80:
        raise ValueError("a chart needs at least 120 x 80 pixels")


def _marker_groups(markers: Sequence[Marker]) -> dict[tuple[int, int], list[Marker]]:
    groups: dict[tuple[int, int], list[Marker]] = {}
    for m in sorted(markers, key=lambda m: (m.index, m.series, -SEVERITY_RANK[m.severity], m.label, m.evidence)):
        groups.setdefault((m.index, m.series), []).append(m)
    return groups


def _marker_text(m: Marker) -> str:
    return f"{m.label}: {m.evidence}" if m.evidence else m.label


def _describe_line(spec: _LineSpec) -> str:
    tr = spec.tr
    n = len(spec.x_labels)
    sessions = bool(spec.x_title)

    def at(label: str) -> str:
        return tr.gettext("session %(label)s", label=label) if sessions else tr.gettext("point %(label)s", label=label)

    if n == 0:
        return tr.gettext("%(title)s. No data yet.", title=spec.title)
    ends = {"title": spec.title, "first": spec.x_labels[0], "last": spec.x_labels[-1]}
    if sessions:
        lead = tr.ngettext(
            "%(title)s. %(num)d session, %(first)s to %(last)s.",
            "%(title)s. %(num)d sessions, %(first)s to %(last)s.",
            n,
            **ends,
        )
    else:
        lead = tr.ngettext(
            "%(title)s. %(num)d point, %(first)s to %(last)s.",
            "%(title)s. %(num)d points, %(first)s to %(last)s.",
            n,
            **ends,
        )
    parts = [lead]
    fmt = spec.value_format
    for s in spec.series:
        present = [(i, v) for i, v in enumerate(s.values) if v is not None]
        if not present:
            parts.append(tr.gettext("%(name)s: no values.", name=s.name))
            continue
        first_i, first_v = present[0]
        last_i, last_v = present[-1]
        low_i, low_v = min(present, key=lambda p: (p[1], p[0]))
        high_i, high_v = max(present, key=lambda p: (p[1], -p[0]))
        if len(present) == 1:
            parts.append(
                tr.gettext(
                    "%(name)s: %(value)s at %(where)s.",
                    name=s.name,
                    value=fmt(first_v),
                    where=at(spec.x_labels[first_i]),
                )
            )
        else:
            parts.append(
                tr.gettext(
                    "%(name)s: %(first)s at %(first_at)s, %(last)s at %(last_at)s; lowest %(low)s at %(low_at)s, "
                    "highest %(high)s at %(high_at)s.",
                    name=s.name,
                    first=fmt(first_v),
                    first_at=at(spec.x_labels[first_i]),
                    last=fmt(last_v),
                    last_at=at(spec.x_labels[last_i]),
                    low=fmt(low_v),
                    low_at=at(spec.x_labels[low_i]),
                    high=fmt(high_v),
                    high_at=at(spec.x_labels[high_i]),
                )
            )
    if spec.cutoff is not None:
        parts.append(f"{spec.cutoff.label}: {fmt(spec.cutoff.value)}.")
    if spec.band is not None:
        parts.append(
            tr.gettext(
                "Shaded band, %(label)s: %(lo)s to %(hi)s.",
                label=spec.band.label,
                lo=fmt(spec.band.lo),
                hi=fmt(spec.band.hi),
            )
        )
    if spec.expected is not None and any(b is not None for b in spec.expected):
        parts.append(tr.gettext("Shaded area: %(label)s.", label=spec.expected_label))
    if spec.markers:
        marks = [
            f"{at(spec.x_labels[m.index])}, {spec.series[m.series].name}, {_marker_text(m)}"
            for group in _marker_groups(spec.markers).values()
            for m in group
        ]
        parts.append(tr.gettext("Signals: %(marks)s.", marks="; ".join(marks)))
    if spec.tension is not None:
        reported = ", ".join(
            f"{spec.x_labels[i]} ({t}, {tr.gettext(TENSION_WORDS[t])})" for i, t in enumerate(spec.tension) if t
        )
        if not reported:
            parts.append(tr.gettext("No tension."))
        elif sessions:
            parts.append(tr.gettext("Tension reported at session %(sessions)s.", sessions=reported))
        else:
            parts.append(tr.gettext("Tension reported at point %(points)s.", points=reported))
    return " ".join(parts)


def _line_scene(spec: _LineSpec, chart_id: str | None, desc: str | None) -> _Scene:
    _validate_line(spec)
    n = len(spec.x_labels)
    width, height = spec.width, spec.height
    scene = _Scene(
        kind=spec.kind,
        chart_id=chart_id or _chart_id(spec.kind, spec),
        width=width,
        height=height,
        title=spec.title,
        desc=desc if desc is not None else _describe_line(spec),
    )
    ticks = nice_ticks(spec.y_min, spec.y_max, 6 if height >= 180 else 4)
    tick_labels = [spec.tick_format(t) for t in ticks]
    y2_labels: list[str] = []
    if spec.y2 is not None:
        lo2, hi2 = spec.y2
        y2_values = [lo2 + (t - spec.y_min) / (spec.y_max - spec.y_min) * (hi2 - lo2) for t in ticks]
        y2_labels = [format_plain(v) for v in y2_values]
    left = 8 + max(_text_width(t) for t in tick_labels) + 6
    tr = spec.tr
    point, point_word = tr.gettext("Point"), tr.gettext("point")
    if spec.tension is not None:  # room for the strip's "Tension" label
        left = max(left, 6 + _text_width(tr.gettext("Tension"), SMALL_SIZE - 1) + 6)
    right = 10 + (max(_text_width(t) for t in y2_labels) + 6 if y2_labels else 0)
    if spec.annotate_last:
        right = max(right, 8.0)

    entries: list[_LegendEntry] = []
    if len(spec.series) > 1:
        for i, s in enumerate(spec.series):
            entries.append(_LegendEntry("line", s.name, PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)], s.emphasis))
    if spec.band is not None:
        entries.append(_LegendEntry("band", spec.band.label))
    if spec.expected is not None and any(b is not None for b in spec.expected):
        entries.append(_LegendEntry("expected", spec.expected_label))
    if spec.cutoff is not None:
        entries.append(_LegendEntry("threshold", spec.cutoff.label, SEVERITY_COLOURS["alert"]))
    severities = sorted({m.severity for m in spec.markers}, key=lambda s: -SEVERITY_RANK[s])
    for severity in severities:
        word = tr.gettext(SEVERITY_WORDS[severity])
        entries.append(_LegendEntry("marker", tr.gettext("Signal (%(kind)s)", kind=word), severity=severity))
    if spec.tension is not None and any(spec.tension):
        entries.append(_LegendEntry("tension", tr.gettext("Tension reported (taller = more)")))
    # without a legend (small multiples), a reference line still needs its key
    legend = _legend_rows(entries if spec.legend else [e for e in entries if e.kind == "threshold"], width - 16)
    top = 6 + len(legend) * 14 + (14 if spec.y_label or spec.y2_label else 4)
    tension_h = 18 if spec.tension is not None else 0
    bottom = tension_h + 18 + (13 if spec.x_title else 0)
    plot_left, plot_right = left, width - right
    plot_top, plot_bottom = top, height - bottom
    if plot_bottom - plot_top < 30 or plot_right - plot_left < 60:
        raise ValueError("the chart is too small for its legend and labels")
    _draw_legend(scene, legend, 8, 4)

    def y_of(value: float, axis: AxisSide = "left") -> float:
        if axis == "right" and spec.y2 is not None:
            lo, hi = spec.y2
        else:
            lo, hi = spec.y_min, spec.y_max
        clamped = min(max(value, lo), hi)
        return plot_bottom - (clamped - lo) / (hi - lo) * (plot_bottom - plot_top)

    plot_w = plot_right - plot_left
    pad = min(10.0, plot_w / (2 * max(n, 1)))
    if n <= 1:
        xs = [plot_left + plot_w / 2] * n
    else:
        xs = [plot_left + pad + i * (plot_w - 2 * pad) / (n - 1) for i in range(n)]

    # axis labels above the plot
    if spec.y_label:
        scene.label(plot_left - 4, plot_top - 6, spec.y_label, size=SMALL_SIZE, fill=MUTED)
    if spec.y2_label:
        scene.label(plot_right + 4, plot_top - 6, spec.y2_label, anchor="end", size=SMALL_SIZE, fill=MUTED)

    # shaded areas under everything else
    if spec.band is not None:
        y_hi, y_lo = y_of(max(spec.band.lo, spec.band.hi)), y_of(min(spec.band.lo, spec.band.hi))
        scene.add(
            "rect",
            title=tr.gettext(
                "%(label)s: %(lo)s to %(hi)s",
                label=spec.band.label,
                lo=spec.value_format(spec.band.lo),
                hi=spec.value_format(spec.band.hi),
            ),
            x=plot_left,
            y=y_hi,
            width=plot_w,
            height=max(y_lo - y_hi, 0.5),
            fill=BAND_FILL,
        )
    if spec.expected is not None:
        run_x: list[float] = []
        run_b: list[tuple[float, float]] = []
        for i, bounds in enumerate([*spec.expected, None]):
            if bounds is not None:
                run_x.append(xs[i])
                run_b.append((y_of(min(bounds)), y_of(max(bounds))))
                continue
            if len(run_x) == 1:  # a single session: a short bar
                (lo_y, hi_y) = run_b[0]
                scene.add("rect", x=run_x[0] - 3, y=hi_y, width=6, height=max(lo_y - hi_y, 0.5), fill=EXPECTED_FILL)
            elif run_x:
                scene.add("path", d=_band_path(run_x, run_b), fill=EXPECTED_FILL, stroke="none")
            run_x, run_b = [], []

    # grid and axes
    for tick, text in zip(ticks, tick_labels, strict=True):
        y = y_of(tick)
        scene.add("line", x1=plot_left, y1=y, x2=plot_right, y2=y, stroke=GRID, stroke_width=1)
        scene.label(plot_left - 6, y + 3.5, text, anchor="end", fill=MUTED)
    for tick, text in zip(ticks, y2_labels, strict=False):
        scene.label(plot_right + 6, y_of(tick) + 3.5, text, anchor="start", fill=MUTED)
    scene.add("line", x1=plot_left, y1=plot_bottom, x2=plot_right, y2=plot_bottom, stroke=AXIS, stroke_width=1)

    if spec.cutoff is not None:
        y = y_of(spec.cutoff.value)
        scene.add(
            "line",
            title=f"{spec.cutoff.label}: {spec.value_format(spec.cutoff.value)}",
            x1=plot_left,
            y1=y,
            x2=plot_right,
            y2=y,
            stroke=SEVERITY_COLOURS["alert"],
            stroke_width=1.2,
            stroke_dasharray="4 3",
        )

    if n == 0:
        no_data = tr.gettext("No data yet")
        scene.label(plot_left + plot_w / 2, (plot_top + plot_bottom) / 2, no_data, anchor="middle", fill=MUTED)
        return scene

    # x labels, thinned so that none overlap
    label_y = plot_bottom + tension_h + 13
    for i in thin_labels(xs, spec.x_labels, anchor=spec.label_anchor):
        scene.add("line", x1=xs[i], y1=plot_bottom, x2=xs[i], y2=plot_bottom + 3, stroke=AXIS)
        scene.label(xs[i], label_y, spec.x_labels[i], anchor="middle", fill=MUTED)
    if spec.x_title:
        scene.label(plot_left + plot_w / 2, label_y + 13, spec.x_title, anchor="middle", size=SMALL_SIZE)

    # tension strip between the plot and the x labels
    if spec.tension is not None:
        strip_bottom = plot_bottom + tension_h - 2
        scene.label(plot_left - 6, strip_bottom - 1, tr.gettext("Tension"), anchor="end", size=SMALL_SIZE - 1)
        bar_w = max(min(8.0, (plot_w / max(n, 1)) * 0.7), 2.0)
        for i, t in enumerate(spec.tension):
            if not t:
                continue
            bar_h = 3.0 * t + 2
            colour = SEVERITY_COLOURS["warning"] if t < 2 else SEVERITY_COLOURS["alert"]
            where = f"{spec.x_title or point} {spec.x_labels[i]}"
            scene.add(
                "rect",
                title=tr.gettext(
                    "%(where)s: tension %(value)d (%(words)s)",
                    where=where,
                    value=t,
                    words=tr.gettext(TENSION_WORDS[t]),
                ),
                x=xs[i] - bar_w / 2,
                y=strip_bottom - bar_h,
                width=bar_w,
                height=bar_h,
                fill=colour,
            )

    # the series, emphasised ones last so that they sit on top
    order = sorted(range(len(spec.series)), key=lambda i: (spec.series[i].emphasis, -i))
    draw_points = n <= POINTS_DRAWN_UP_TO
    for i in order:
        s = spec.series[i]
        colour = PALETTE[i % len(PALETTE)] if len(spec.series) > 1 else PALETTE[0]
        dash = DASHES[i % len(DASHES)] if len(spec.series) > 1 else ""
        stroke_width = 2.4 if s.emphasis or len(spec.series) == 1 else 1.5
        ys = [None if v is None else y_of(v, s.axis) for v in s.values]
        for segment in _segments(xs, ys):
            if len(segment) > 1:
                scene.add(
                    "path",
                    d=_path(segment),
                    fill="none",
                    stroke=colour,
                    stroke_width=stroke_width,
                    stroke_dasharray=dash or None,
                    stroke_linejoin="round",
                    stroke_linecap="round",
                )
        for j, (x, point_y) in enumerate(zip(xs, ys, strict=True)):
            if point_y is None:
                continue
            isolated = (j == 0 or ys[j - 1] is None) and (j == n - 1 or ys[j + 1] is None)
            if draw_points or isolated:
                value = s.values[j]
                assert value is not None  # ys[j] is None exactly when the value is
                scene.add(
                    "circle",
                    title=f"{s.name}, {spec.x_title or point_word} {spec.x_labels[j]}: {spec.value_format(value)}",
                    cx=x,
                    cy=point_y,
                    r=2.8 if stroke_width > 2 else 2.2,
                    fill="#ffffff",
                    stroke=colour,
                    stroke_width=1.4,
                )
        if spec.annotate_last:
            last = next((j for j in range(n - 1, -1, -1) if s.values[j] is not None), None)
            if last is not None:
                last_value, last_y = s.values[last], ys[last]
                assert last_value is not None  # found above as not None
                assert last_y is not None
                scene.add("circle", cx=xs[last], cy=last_y, r=3.2, fill=colour)
                scene.label(
                    xs[last], last_y - 7, spec.value_format(last_value), anchor="middle", fill=INK, weight="bold"
                )

    # signal markers on top, one symbol per point, evidence in the title
    for (index, series_index), group in _marker_groups(spec.markers).items():
        s = spec.series[series_index]
        value = s.values[index]
        y = plot_top + 6 if value is None else y_of(value, s.axis)
        title = f"{spec.x_title or point} {spec.x_labels[index]}: " + "; ".join(_marker_text(m) for m in group)
        _marker_symbol(scene, xs[index], y, group[0].severity, title)
    return scene


def line_chart(
    series: Sequence[Series],
    *,
    y_min: float,
    y_max: float,
    title: str,
    x_labels: Sequence[str] | None = None,
    cutoff: float | Threshold | None = None,
    band: Band | None = None,
    expected_band: Sequence[tuple[float, float] | None] | None = None,
    expected_label: str | None = None,
    markers: Sequence[Marker] = (),
    tension: Sequence[int | None] | None = None,
    y2: tuple[float, float] | None = None,
    y_label: str = "",
    y2_label: str = "",
    x_title: str | None = None,
    value_format: ValueFormat = format_plain,
    desc: str | None = None,
    width: int = 640,
    height: int = 260,
    chart_id: str | None = None,
    translate: Translator = ENGLISH,
) -> Markup:
    """Render series over sessions as SVG, with optional cutoff, shaded bands, signal markers and tension marks."""
    spec = _line_spec(
        "line",
        series,
        y_min=y_min,
        y_max=y_max,
        title=title,
        x_labels=x_labels,
        cutoff=cutoff,
        band=band,
        expected_band=expected_band,
        expected_label=expected_label,
        markers=markers,
        tension=tension,
        y2=y2,
        y_label=y_label,
        y2_label=y2_label,
        x_title=x_title,
        tick_format=format_plain,
        value_format=value_format,
        annotate_last=False,
        width=width,
        height=height,
        translate=translate,
    )
    return _render(_line_scene(spec, chart_id, desc))


def _line_spec(
    kind: str,
    series: Sequence[Series],
    *,
    y_min: float,
    y_max: float,
    title: str,
    x_labels: Sequence[str] | None,
    cutoff: float | Threshold | None,
    band: Band | None,
    expected_band: Sequence[tuple[float, float] | None] | None,
    expected_label: str | None,
    markers: Sequence[Marker],
    tension: Sequence[int | None] | None,
    y2: tuple[float, float] | None,
    y_label: str,
    y2_label: str,
    x_title: str | None,
    tick_format: ValueFormat,
    value_format: ValueFormat,
    annotate_last: bool,
    width: int,
    height: int,
    translate: Translator = ENGLISH,
) -> _LineSpec:
    n = len(series[0].values) if series else 0
    labels = tuple(x_labels) if x_labels is not None else tuple(str(i + 1) for i in range(n))
    tr = translate
    threshold = Threshold(float(cutoff), tr.gettext("Cutoff")) if isinstance(cutoff, int | float) else cutoff
    return _LineSpec(
        kind=kind,
        series=tuple(series),
        y_min=float(y_min),
        y_max=float(y_max),
        title=title,
        x_labels=labels,
        x_title=tr.gettext("Session") if x_title is None else x_title,
        cutoff=threshold,
        band=band,
        expected=None
        if expected_band is None
        else tuple(None if b is None else (float(b[0]), float(b[1])) for b in expected_band),
        expected_label=tr.gettext("Expected range") if expected_label is None else expected_label,
        markers=tuple(markers),
        tension=None if tension is None else tuple(tension),
        y2=y2,
        y_label=y_label,
        y2_label=y2_label,
        tick_format=tick_format,
        value_format=value_format,
        annotate_last=annotate_last,
        width=width,
        height=height,
        tr=tr,
    )


def line_chart_text(
    series: Sequence[Series],
    *,
    title: str,
    x_labels: Sequence[str] | None = None,
    cutoff: float | Threshold | None = None,
    band: Band | None = None,
    expected_band: Sequence[tuple[float, float] | None] | None = None,
    expected_label: str | None = None,
    markers: Sequence[Marker] = (),
    tension: Sequence[int | None] | None = None,
    x_title: str | None = None,
    value_format: ValueFormat = format_plain,
    translate: Translator = ENGLISH,
) -> str:
    """Describe a line chart in plain text (the same text the SVG carries in its <desc>)."""
    spec = _line_spec(
        "line",
        series,
        y_min=0,
        y_max=1,
        title=title,
        x_labels=x_labels,
        cutoff=cutoff,
        band=band,
        expected_band=expected_band,
        expected_label=expected_label,
        markers=markers,
        tension=tension,
        y2=(0, 1) if any(s.axis == "right" for s in series) else None,
        y_label="",
        y2_label="",
        x_title=x_title,
        tick_format=format_plain,
        value_format=value_format,
        annotate_last=False,
        width=640,
        height=260,
        translate=translate,
    )
    _validate_line(spec)
    return _describe_line(spec)


def line_chart_table(
    series: Sequence[Series],
    *,
    title: str,
    x_labels: Sequence[str] | None = None,
    expected_band: Sequence[tuple[float, float] | None] | None = None,
    expected_label: str | None = None,
    markers: Sequence[Marker] = (),
    tension: Sequence[int | None] | None = None,
    x_title: str | None = None,
    value_format: ValueFormat = format_plain,
    translate: Translator = ENGLISH,
) -> Markup:
    """Return the data behind a line chart as an HTML table: one row per x position, signals with evidence."""
    n = len(series[0].values) if series else 0
    labels = list(x_labels) if x_labels is not None else [str(i + 1) for i in range(n)]
    for s in series:
        _check_same_length(f"series {s.name!r}", s.values, n)
    _check_same_length("x_labels", labels, n)
    tr = translate
    x_title = tr.gettext("Session") if x_title is None else x_title
    headers = [x_title or tr.gettext("Point"), *(s.name for s in series)]
    if expected_band is not None:
        _check_same_length("expected_band", expected_band, n)
        headers.append(tr.gettext("Expected range") if expected_label is None else expected_label)
    if tension is not None:
        _check_same_length("tension", tension, n)
        headers.append(tr.gettext("Tension"))
    if markers:
        headers.append(tr.gettext("Signals"))
    by_index: dict[int, list[Marker]] = {}
    for (index, _), group in sorted(_marker_groups(markers).items()):
        by_index.setdefault(index, []).extend(group)
    rows: list[list[str]] = []
    for i in range(n):
        row = [labels[i], *(DASH if s.values[i] is None else value_format(s.values[i] or 0.0) for s in series)]
        if expected_band is not None:
            b = expected_band[i]
            row.append(
                DASH if b is None else tr.gettext("%(lo)s to %(hi)s", lo=value_format(b[0]), hi=value_format(b[1]))
            )
        if tension is not None:
            t = tension[i]
            row.append(DASH if t is None else f"{t} ({tr.gettext(TENSION_WORDS[t])})")
        if markers:
            row.append("; ".join(_marker_text(m) for m in by_index.get(i, [])))
        rows.append(row)
    return _render_table(title, headers, rows)


def trend_chart(
    values: Sequence[TrendValue],
    *,
    title: str,
    y_min: float,
    y_max: float,
    value_format: ValueFormat = format_plain,
    tick_format: ValueFormat | None = None,
    reference: Threshold | None = None,
    interval_label: str | None = None,
    legend: bool = False,
    desc: str | None = None,
    width: int = 330,
    height: int = 170,
    chart_id: str | None = None,
    translate: Translator = ENGLISH,
) -> Markup:
    """Render a monthly trend as SVG: the line, its interval as a shaded band, and the latest value labelled."""
    bounds: list[tuple[float, float] | None] = []
    for v in values:
        if (v.lo is None) != (v.hi is None):
            raise ValueError(f"trend point {v.label!r} has only one interval bound")
        bounds.append(None if v.lo is None or v.hi is None else (v.lo, v.hi))
    has_bounds = any(b is not None for b in bounds)
    spec = _line_spec(
        "trend",
        [Series(title, tuple(v.value for v in values))],
        y_min=y_min,
        y_max=y_max,
        title=title,
        x_labels=[v.label for v in values],
        cutoff=reference,
        band=None,
        expected_band=bounds if has_bounds else None,
        expected_label=translate.gettext("95% interval") if interval_label is None else interval_label,
        markers=(),
        tension=None,
        y2=None,
        y_label="",
        y2_label="",
        x_title="",
        tick_format=tick_format or value_format,
        value_format=value_format,
        annotate_last=True,
        width=width,
        height=height,
        translate=translate,
    )
    spec = dataclasses.replace(spec, legend=legend, label_anchor="end")
    text = desc if desc is not None else trend_text(values, title=title, value_format=value_format, translate=translate)
    return _render(_line_scene(spec, chart_id, text))


def trend_text(
    values: Sequence[TrendValue],
    *,
    title: str,
    value_format: ValueFormat = format_plain,
    with_title: bool = True,
    translate: Translator = ENGLISH,
) -> str:
    """Describe a trend in plain text: latest value, its interval, and the range over the months shown."""
    tr = translate
    lead = f"{title}. " if with_title else ""
    present = [v for v in values if v.value is not None]
    if not present:
        return lead + tr.gettext("No data in the months shown.")
    last = present[-1]
    assert last.value is not None  # filtered above
    text = f"{lead}{last.label}: {value_format(last.value)}"
    if last.lo is not None and last.hi is not None:
        text += " " + tr.gettext("(95%% interval %(lo)s to %(hi)s)", lo=value_format(last.lo), hi=value_format(last.hi))
    text += "."
    if len(present) > 1:
        low = min(present, key=lambda v: v.value or 0.0)
        high = max(present, key=lambda v: v.value or 0.0)
        text += " " + tr.gettext(
            "Over %(months)d months: from %(first)s in %(first_in)s; lowest %(low)s in %(low_in)s, "
            "highest %(high)s in %(high_in)s.",
            months=len(values),
            first=value_format(present[0].value or 0.0),
            first_in=present[0].label,
            low=value_format(low.value or 0.0),
            low_in=low.label,
            high=value_format(high.value or 0.0),
            high_in=high.label,
        )
    missing = len(values) - len(present)
    if missing:
        text += " " + tr.ngettext("%(num)d month without data.", "%(num)d months without data.", missing)
    return text


def trend_table(
    values: Sequence[TrendValue],
    *,
    title: str,
    value_format: ValueFormat = format_plain,
    translate: Translator = ENGLISH,
) -> Markup:
    """Return a trend's months, values and intervals as an HTML table."""
    rows = [
        [
            v.label,
            DASH if v.value is None else value_format(v.value),
            ""
            if v.lo is None or v.hi is None
            else translate.gettext("%(lo)s to %(hi)s", lo=value_format(v.lo), hi=value_format(v.hi)),
        ]
        for v in values
    ]
    headers = [translate.gettext("Month"), translate.gettext("Value"), translate.gettext("95% interval")]
    return _render_table(title, headers, rows)


# ---------------------------------------------------------------------------------------------------------------
# Bars and sparklines


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    x_max: float,
    x_min: float = 0.0,
    value_format: ValueFormat = format_plain,
    reference: Threshold | None = None,
    interval_label: str | None = None,
    desc: str | None = None,
    width: int = 640,
    bar_height: int = 12,
    label_width: float | None = None,
    chart_id: str | None = None,
    translate: Translator = ENGLISH,
) -> Markup:
    """Render horizontal bars (in the given order) with optional intervals; bars without a value show their note."""
    if not x_max > x_min:
        raise ValueError("x_max must be above x_min")
    for b in bars:
        if (b.lo is None) != (b.hi is None):
            raise ValueError(f"bar {b.label!r} has only one interval bound")
        for v in (b.value, b.lo, b.hi):
            if v is not None and not math.isfinite(v):
                raise ValueError(f"bar {b.label!r} has a non-finite value")
    largest = max((v for b in bars for v in (b.value, b.hi) if v is not None), default=x_min)
    if largest > x_max:  # never clip a bar: widen the axis to a round number instead
        x_max = x_min + nice_ceiling(largest - x_min)
    row_h = bar_height + 7
    tr = translate
    has_intervals = any(b.lo is not None for b in bars)
    legend: list[_LegendEntry] = []
    if has_intervals:
        legend.append(
            _LegendEntry("line", tr.gettext("95% interval") if interval_label is None else interval_label, INK)
        )
    if reference is not None:
        legend.append(_LegendEntry("threshold", reference.label, SEVERITY_COLOURS["alert"]))
    legend_rows = _legend_rows(legend, width - 16)
    top = 6 + len(legend_rows) * 14 + 4
    labels_w = (
        label_width
        if label_width is not None
        else min(max((_text_width(b.label) for b in bars), default=40) + 10, width * 0.32)
    )
    value_w = max((_text_width(value_format(v)) for b in bars for v in (b.value, b.hi) if v is not None), default=30)
    plot_left, plot_right = 8 + labels_w, width - 10 - max(value_w + 8, 0)
    if plot_right - plot_left < 60:
        raise ValueError("the chart is too narrow for its labels")
    plot_top = top
    plot_bottom = plot_top + max(len(bars), 1) * row_h
    height = math.ceil(plot_bottom + 22)
    scene = _Scene(
        kind="bar",
        chart_id=chart_id or _chart_id("bar", title, bars, x_min, x_max, reference),
        width=width,
        height=height,
        title=title,
        desc=desc if desc is not None else bar_text(bars, title=title, value_format=value_format, translate=tr),
    )
    _draw_legend(scene, legend_rows, 8, 4)

    def x_of(value: float) -> float:
        clamped = min(max(value, x_min), x_max)
        return plot_left + (clamped - x_min) / (x_max - x_min) * (plot_right - plot_left)

    ticks = nice_ticks(x_min, x_max, 6 if width >= 400 else 4)
    for tick in ticks:
        x = x_of(tick)
        scene.add("line", x1=x, y1=plot_top, x2=x, y2=plot_bottom, stroke=GRID, stroke_width=1)
        scene.label(x, plot_bottom + 13, value_format(tick), anchor="middle", fill=MUTED)
    scene.add("line", x1=x_of(x_min), y1=plot_top, x2=x_of(x_min), y2=plot_bottom, stroke=AXIS)
    if not bars:
        scene.label((plot_left + plot_right) / 2, plot_top + row_h / 2 + 3, tr.gettext("No data"), anchor="middle")
    for i, b in enumerate(bars):
        y = plot_top + i * row_h + 3.5
        mid = y + bar_height / 2
        text = _truncate(b.label, labels_w - 8)
        scene.label(plot_left - 6, mid + 3.5, text, anchor="end", fill=INK, title=b.label if text != b.label else None)
        if b.value is None:
            if b.note:
                scene.label(plot_left + 4, mid + 3, b.note, size=SMALL_SIZE, fill=MUTED)
            continue
        bar_title = f"{b.label}: {value_format(b.value)}"
        if b.lo is not None and b.hi is not None:
            bar_title += " " + tr.gettext(
                "(95%% interval %(lo)s to %(hi)s)", lo=value_format(b.lo), hi=value_format(b.hi)
            )
        scene.add(
            "rect",
            title=bar_title,
            x=x_of(x_min),
            y=y,
            width=max(x_of(b.value) - x_of(x_min), 0.8),
            height=bar_height,
            fill="#9fbcd9",
        )
        end = x_of(b.value)
        if b.lo is not None and b.hi is not None:
            lo_x, hi_x = x_of(b.lo), x_of(b.hi)
            scene.add("line", x1=lo_x, y1=mid, x2=hi_x, y2=mid, stroke=INK, stroke_width=1.2)
            scene.add("line", x1=lo_x, y1=mid - 3.5, x2=lo_x, y2=mid + 3.5, stroke=INK, stroke_width=1.2)
            scene.add("line", x1=hi_x, y1=mid - 3.5, x2=hi_x, y2=mid + 3.5, stroke=INK, stroke_width=1.2)
            end = max(end, hi_x)
        scene.label(end + 4, mid + 3.5, value_format(b.value), fill=INK)
    if reference is not None:
        x = x_of(reference.value)
        scene.add(
            "line",
            title=f"{reference.label}: {value_format(reference.value)}",
            x1=x,
            y1=plot_top - 2,
            x2=x,
            y2=plot_bottom,
            stroke=SEVERITY_COLOURS["alert"],
            stroke_width=1.2,
            stroke_dasharray="4 3",
        )
    return _render(scene)


def bar_text(
    bars: Sequence[Bar], *, title: str, value_format: ValueFormat = format_plain, translate: Translator = ENGLISH
) -> str:
    """Describe bars in plain text, in their order."""
    tr = translate
    if not bars:
        return f"{title}. " + tr.gettext("No data.")
    parts = []
    for b in bars:
        if b.value is None:
            parts.append(f"{b.label}: {b.note or tr.gettext('no value')}")
        elif b.lo is not None and b.hi is not None:
            interval = tr.gettext("(95%% interval %(lo)s to %(hi)s)", lo=value_format(b.lo), hi=value_format(b.hi))
            parts.append(f"{b.label}: {value_format(b.value)} {interval}")
        else:
            parts.append(f"{b.label}: {value_format(b.value)}")
    return f"{title}. " + "; ".join(parts) + "."


def bar_table(
    bars: Sequence[Bar], *, title: str, value_format: ValueFormat = format_plain, translate: Translator = ENGLISH
) -> Markup:
    """Return bars as an HTML table."""
    rows = [
        [
            b.label,
            (b.note or DASH) if b.value is None else value_format(b.value),
            ""
            if b.lo is None or b.hi is None
            else translate.gettext("%(lo)s to %(hi)s", lo=value_format(b.lo), hi=value_format(b.hi)),
        ]
        for b in bars
    ]
    return _render_table(title, ["", translate.gettext("Value"), translate.gettext("95% interval")], rows)


def sparkline(
    values: Sequence[float | None],
    *,
    title: str,
    labels: Sequence[str] | None = None,
    value_format: ValueFormat = format_plain,
    y_range: tuple[float, float] | None = None,
    width: int = 96,
    height: int = 22,
    chart_id: str | None = None,
    translate: Translator = ENGLISH,
) -> Markup:
    """Render a tiny trend line with its latest value dotted; the title and desc carry the numbers."""
    clean = [None if v is None else float(v) for v in values]
    for v in clean:
        if v is not None and not math.isfinite(v):
            raise ValueError("sparkline values must be finite; use None for a missing value")
    points = [labels[i] if labels is not None else str(i + 1) for i in range(len(clean))]
    desc = trend_text(
        [TrendValue(points[i], v) for i, v in enumerate(clean)],
        title=title,
        value_format=value_format,
        translate=translate,
    )
    scene = _Scene(
        kind="spark",
        chart_id=chart_id or _chart_id("spark", title, clean, y_range),
        width=width,
        height=height,
        title=title,
        desc=desc,
    )
    present = [v for v in clean if v is not None]
    if not present:
        scene.add("line", x1=2, y1=height / 2, x2=width - 2, y2=height / 2, stroke=GRID, stroke_dasharray="2 2")
        return _render(scene)
    lo, hi = y_range if y_range is not None else (min(present), max(present))
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    n = len(clean)
    pad_x, pad_y = 3.5, 3.5
    xs = [width / 2] if n == 1 else [pad_x + i * (width - 2 * pad_x) / (n - 1) for i in range(n)]
    ys = [
        None if v is None else height - pad_y - (min(max(v, lo), hi) - lo) / (hi - lo) * (height - 2 * pad_y)
        for v in clean
    ]
    for segment in _segments(xs, ys):
        if len(segment) > 1:
            scene.add(
                "path", d=_path(segment), fill="none", stroke=PALETTE[0], stroke_width=1.3, stroke_linejoin="round"
            )
    last = max(i for i, y in enumerate(ys) if y is not None)
    last_y = ys[last]
    assert last_y is not None  # chosen as not None
    scene.add("circle", cx=xs[last], cy=last_y, r=2.2, fill=PALETTE[1])
    return _render(scene)
