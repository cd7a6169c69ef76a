"""The shared SVG chart module: valid XML, escaping, 1 and 100 points, text alternatives, determinism."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports import charts

SVG = "{http://www.w3.org/2000/svg}"
ALLOWED_TAGS = {"svg", "title", "desc", "g", "line", "rect", "path", "circle", "polygon", "text"}
HOSTILE = '<script>alert(1)</script><img src="file:///etc/passwd"> & "quotes" \'single\' ]]> <!-- -->'

# CLINICAL.md worked example B1: totals, and the signals the rules give at sessions 1, 5, 6 and 7.
B1 = [34, 36, 37, 36, 27, 31, 36, 37]
B1_MARKERS = [
    charts.Marker(0, "LOW_ALLIANCE", "34 < 36", severity="info"),
    charts.Marker(4, "RUPTURE_DEV", "m 35.75, s 3.0, threshold 29.75"),
    charts.Marker(4, "RUPTURE_DROP", "drop 9 >= 5.37"),
    charts.Marker(4, "LOW_ALLIANCE", "27 < 36", severity="info"),
    charts.Marker(6, "REPAIRED", "36 >= baseline 35.75", severity="good"),
]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    return root


def local(tag: str) -> str:
    return tag.removeprefix(SVG)


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(SVG + "text")]


def assert_accessible(root: ET.Element) -> None:
    assert root.get("role") == "img"
    title = root.find(SVG + "title")
    desc = root.find(SVG + "desc")
    assert title is not None
    assert title.text
    assert desc is not None
    assert desc.text
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


def assert_inert(root: ET.Element) -> None:
    for element in root.iter():
        assert local(element.tag) in ALLOWED_TAGS, element.tag
        for name in element.attrib:
            assert "href" not in name
            assert not name.lower().startswith("on"), name


def partnership_chart(n: int, *, hostile: str = "") -> str:
    totals = [float(B1[i % len(B1)]) for i in range(n)]
    items = [[t / 4 + (k - 1.5) * 0.3 for t in totals] for k in range(4)]
    series = [charts.Series(hostile + "Total", totals, emphasis=True)] + [
        charts.Series(name, values, axis="right")
        for name, values in zip(
            ("Rapport", "Mutual goals", "Realistic goals", "Shared responsibility"), items, strict=True
        )
    ]
    markers = [m for m in B1_MARKERS if m.index < n]
    return charts.line_chart(
        series,
        y_min=0,
        y_max=40,
        y2=(0, 10),
        y_label="Total (0-40)",
        y2_label="Components (0-10)",
        title=hostile + "Partnership Check by session",
        cutoff=charts.Threshold(36, "Low-alliance prompt (< 36)"),
        markers=markers,
        tension=[(i % 4) if i % 3 == 0 else 0 for i in range(n)],
    )


def test_line_chart_is_valid_accessible_svg_with_signals_and_tension() -> None:
    svg = partnership_chart(len(B1))
    root = parse(svg)
    assert_accessible(root)
    assert_inert(root)
    # One symbol per marked point, the evidence in its <title> (hover and screen readers).
    hover = [g.find(SVG + "title").text or "" for g in root.iter(SVG + "g")]  # type: ignore[union-attr]
    session5 = [t for t in hover if t.startswith("Session 5:")]
    assert session5 == [
        "Session 5: RUPTURE_DEV: m 35.75, s 3.0, threshold 29.75; RUPTURE_DROP: drop 9 >= 5.37; LOW_ALLIANCE: 27 < 36"
    ]
    assert "Session 7: REPAIRED: 36 >= baseline 35.75" in hover
    assert any(t.startswith("Session 4: tension 3 (a lot)") for t in hover)
    strip = next(t for t in root.iter(SVG + "text") if t.text == "Tension")
    assert float(strip.get("x", "0")) - len("Tension") * charts.CHAR_WIDTH * (charts.SMALL_SIZE - 1) >= 0
    desc = root.find(SVG + "desc").text or ""  # type: ignore[union-attr]
    assert "Total: 34 at session 1, 37 at session 8; lowest 27 at session 5" in desc
    assert "RUPTURE_DEV: m 35.75, s 3.0, threshold 29.75" in desc
    # the right axis is labelled in component units, aligned with the left grid
    assert {"0", "10", "20", "30", "40"} <= set(texts(root))
    assert {"2.5", "5", "7.5"} <= set(texts(root))


def test_untrusted_text_is_escaped_everywhere_in_a_chart() -> None:
    svg = partnership_chart(len(B1), hostile=HOSTILE)
    assert "<script" not in svg
    assert "<img" not in svg
    root = parse(svg)  # still well-formed XML
    assert_inert(root)
    title = root.find(SVG + "title")
    assert title is not None
    assert title.text == HOSTILE + "Partnership Check by session"

    bar = charts.bar_chart(
        [charts.Bar(HOSTILE, 0.5, 0.4, 0.6), charts.Bar("x", None, note=HOSTILE)],
        title=HOSTILE,
        x_max=1,
    )
    assert "<script" not in bar
    assert_inert(parse(bar))
    marker = charts.line_chart(
        [charts.Series("s", [1, 2])],
        y_min=0,
        y_max=3,
        title="t",
        x_labels=[HOSTILE, "b"],
        markers=[charts.Marker(0, HOSTILE, HOSTILE)],
    )
    assert "<script" not in marker
    assert_inert(parse(marker))
    table = charts.line_chart_table([charts.Series(HOSTILE, [1])], title=HOSTILE, markers=[charts.Marker(0, HOSTILE)])
    assert "<script" not in table
    assert "&lt;script&gt;" in table


def test_one_point_is_drawn_and_labelled() -> None:
    svg = partnership_chart(1)
    root = parse(svg)
    assert_accessible(root)
    circles = [c for c in root.iter(SVG + "circle")]
    assert len(circles) == 5  # one point per series, even without a line to draw
    assert "1" in texts(root)
    assert "1 session, 1 to 1." in (root.find(SVG + "desc").text or "")  # type: ignore[union-attr]


def _label_boxes(root: ET.Element, y_min: float) -> list[tuple[float, float]]:
    """x extents of the x-axis labels (text anchored middle, below the plot)."""
    boxes = []
    for t in root.iter(SVG + "text"):
        if t.get("text-anchor") == "middle" and float(t.get("y", "0")) > y_min and t.text and t.text.isdigit():
            half = len(t.text) * charts.FONT_SIZE * 0.55 / 2
            x = float(t.get("x", "0"))
            boxes.append((x - half, x + half))
    return sorted(boxes)


def test_hundred_points_have_thinned_non_overlapping_labels() -> None:
    svg = partnership_chart(100)
    root = parse(svg)
    assert_accessible(root)
    boxes = _label_boxes(root, y_min=200)
    labels = [t.text for t in root.iter(SVG + "text") if t.get("text-anchor") == "middle" and (t.text or "").isdigit()]
    assert "1" in labels
    assert "100" in labels
    assert 5 <= len(boxes) <= 25
    for (_, right), (left, _) in itertools.pairwise(boxes):
        assert right < left, "x labels overlap"
    # lines only: no per-point circles beyond the markers' rings at this density
    assert len(list(root.iter(SVG + "circle"))) <= len(B1_MARKERS)


def test_no_points_says_so() -> None:
    svg = charts.line_chart([charts.Series("Total", [])], y_min=0, y_max=40, title="Empty")
    root = parse(svg)
    assert_accessible(root)
    assert "No data yet" in texts(root)


def test_missing_values_break_the_line() -> None:
    svg = charts.line_chart([charts.Series("PHQ-9", [20, 18, None, 12, 10])], y_min=0, y_max=27, title="PHQ-9")
    root = parse(svg)
    paths = [p.get("d", "") for p in root.iter(SVG + "path")]
    assert len(paths) == 2
    assert all(d.count("M") == 1 for d in paths)


def test_bands_and_cutoff_are_drawn() -> None:
    svg = charts.line_chart(
        [charts.Series("PHQ-9", [20, 18, 15, 12])],
        y_min=0,
        y_max=27,
        title="PHQ-9",
        cutoff=10,
        band=charts.Band(14, 26, "No reliable change from the first score"),
        expected_band=[(17, 23), (15, 21), None, (12, 19)],
    )
    root = parse(svg)
    fills = [r.get("fill") for r in root.iter(SVG + "rect")] + [p.get("fill") for p in root.iter(SVG + "path")]
    assert charts.BAND_FILL in fills
    assert charts.EXPECTED_FILL in fills
    assert "Cutoff" in texts(root)
    assert "No reliable change from the first score" in texts(root)


def test_line_chart_table_is_the_text_alternative() -> None:
    series = [charts.Series("Total", B1), charts.Series("Rapport", [9] * len(B1))]
    table = charts.line_chart_table(
        series, title="Partnership Check", markers=B1_MARKERS, tension=[0, 0, 0, 0, 2, 1, 0, 0]
    )
    root = ET.fromstring(table)
    caption = root.find("caption")
    assert caption is not None
    assert caption.text == "Partnership Check"
    headers = [th.text for th in root.iter("th") if th.get("scope") == "col"]
    assert headers == ["Session", "Total", "Rapport", "Tension", "Signals"]
    rows = root.find("tbody")
    assert rows is not None
    assert len(rows) == len(B1)
    row5 = [c.text or "" for c in rows[4]]
    assert row5[:4] == ["5", "27", "9", "2 (somewhat)"]
    assert "RUPTURE_DROP: drop 9 >= 5.37" in row5[4]
    text = charts.line_chart_text(series, title="Partnership Check", markers=B1_MARKERS)
    assert "REPAIRED: 36 >= baseline 35.75" in text


def test_trend_chart_shows_interval_band_latest_value_and_gaps() -> None:
    values = [charts.TrendValue(f"M{i}", 0.5 + i / 100, 0.4 + i / 100, 0.6 + i / 100) for i in range(12)]
    values[3] = charts.TrendValue("M3", None)
    svg = charts.trend_chart(values, title="Reliable improvement", y_min=0, y_max=1, value_format=lambda v: f"{v:.0%}")
    root = parse(svg)
    assert_accessible(root)
    assert "61%" in texts(root)  # the latest value, labelled
    desc = root.find(SVG + "desc").text or ""  # type: ignore[union-attr]
    assert "M11: 61% (95% interval 51% to 71%)" in desc
    assert "1 month without data" in desc
    assert len([p for p in root.iter(SVG + "path") if p.get("fill") == charts.EXPECTED_FILL]) == 2
    table = ET.fromstring(charts.trend_table(values, title="t", value_format=lambda v: f"{v:.0%}"))
    assert len(table.find("tbody")) == 12  # type: ignore[arg-type]


def test_bar_chart_shows_notes_for_missing_values_and_grows_with_rows() -> None:
    one = parse(charts.bar_chart([charts.Bar("A", 0.5, 0.3, 0.7)], title="t", x_max=1))
    many = parse(
        charts.bar_chart(
            [charts.Bar(f"Clinician {i}", None if i % 7 == 0 else i / 100, note="fewer than 5") for i in range(100)],
            title="t",
            x_max=1,
        )
    )
    assert int(many.get("height", "0")) > 10 * int(one.get("height", "0")) / 2
    assert texts(many).count("fewer than 5") == 15
    assert "Clinician 99" in texts(many)


def test_sparkline_is_accessible_and_handles_gaps() -> None:
    root = parse(charts.sparkline([1, None, 3, 2], title="Sessions"))
    assert_accessible(root)
    assert "from 1 in 1; lowest 1 in 1, highest 3 in 3" in (root.find(SVG + "desc").text or "")  # type: ignore[union-attr]
    empty = parse(charts.sparkline([None, None], title="Nothing"))
    assert "No data" in (empty.find(SVG + "desc").text or "")  # type: ignore[union-attr]


def test_output_is_deterministic_and_ids_differ_between_charts() -> None:
    assert partnership_chart(20) == partnership_chart(20)
    ids = {parse(partnership_chart(n)).get("id") for n in (5, 6, 7)}
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"series": [charts.Series("a", [1, 2]), charts.Series("b", [1])]}, "has 1 values for 2"),
        ({"markers": [charts.Marker(5, "X")]}, "outside 0..1"),
        ({"tension": [0, 4]}, "tension answers"),
        ({"y_max": 0}, "y_max must be above"),
        ({"series": [charts.Series("r", [1, 2], axis="right")]}, "no y2 range"),
    ],
)
def test_bad_input_is_refused(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"series": [charts.Series("a", [1, 2])], "y_min": 0, "y_max": 10, "title": "t"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        charts.line_chart(**args)  # type: ignore[arg-type]


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        charts.Series("a", [1.0, float("nan")])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=400),
    width=st.integers(min_value=150, max_value=1200),
    anchor=st.sampled_from(["start", "end"]),
)
def test_thinned_labels_never_overlap(n: int, width: int, anchor: str) -> None:
    labels = [str(i + 1) for i in range(n)] if anchor == "start" else [f"Mon {i % 100:02d}" for i in range(n)]
    positions = [20 + i * (width - 40) / max(n - 1, 1) for i in range(n)]
    chosen = charts.thin_labels(positions, labels, anchor=anchor)  # type: ignore[arg-type]
    assert chosen
    assert (n - 1 if anchor == "end" else 0) in chosen
    spans = sorted(
        (
            positions[i] - len(labels[i]) * charts.FONT_SIZE * charts.CHAR_WIDTH / 2,
            positions[i] + len(labels[i]) * charts.FONT_SIZE * charts.CHAR_WIDTH / 2,
        )
        for i in chosen
    )
    for (_, right), (left, _) in itertools.pairwise(spans):
        assert right <= left


@settings(max_examples=80, deadline=None)
@given(lo=st.floats(-1000, 1000), span=st.floats(0.01, 5000))
def test_nice_ticks_cover_the_axis_with_round_steps(lo: float, span: float) -> None:
    hi = lo + span
    ticks = charts.nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 7
    assert all(lo - 1e-6 <= t <= hi + 1e-6 for t in ticks)
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in {1, 2, 2.5, 5, 10}


@settings(max_examples=80, deadline=None)
@given(value=st.floats(0.001, 1e6))
def test_nice_ceiling_is_round_and_not_below_the_value(value: float) -> None:
    top = charts.nice_ceiling(value)
    assert top >= value
    assert top <= value * 2.5 + 1e-9
    assert math.isclose(charts.nice_ticks(0, top)[-1], top)  # the maximum sits on its own round tick grid


def test_bars_beyond_the_axis_widen_it_instead_of_clipping() -> None:
    root = parse(charts.bar_chart([charts.Bar("a", 65.0), charts.Bar("b", 10.0)], title="t", x_max=60))
    ticks = [t.text for t in root.iter(SVG + "text") if t.get("text-anchor") == "middle"]
    assert ticks[-1] == "80"
    widths = [float(r.get("width", "0")) for r in root.iter(SVG + "rect")]
    assert widths[0] / widths[1] == pytest.approx(6.5, rel=1e-3)


def test_format_plain_trims_zeros() -> None:
    assert [charts.format_plain(v) for v in (36.0, 35.75, 5.4, -2.0, 0.0)] == ["36", "35.75", "5.4", "\u22122", "0"]
    assert re.fullmatch(r"1,234\.5", charts.format_plain(1234.5))
