"""The client chart's SVG blocks, drawn by the one chart module (`reports.charts`) from the plain chart data.

Each block is an SVG (evidence of every signal in its marker's <title>, shown on hover or tap) and the same data as
a table for screen readers and keyboard users, meant to sit in a <details> under the chart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from markupsafe import Markup

from reports.charts import Band, Marker, Series, Severity, Threshold, line_chart, line_chart_table
from services.alerts.summary import component_label, describe_signal, number
from services.clients.chart import ChartSignal, ClientChart, InstrumentSeries, expected_band
from services.signals import (
    COMPONENT_DROP,
    DEFAULT_SETTINGS,
    LOW_ALLIANCE,
    NOT_ON_TRACK,
    OFF_TRACK,
    OPENING_KINDS,
    REPAIRED,
    UNREPAIRED,
    TrajectoryModel,
)
from web.clinician.presenting import signal_name
from web.i18n import translator

CHART_WIDTH = 720
CHART_HEIGHT = 280
# Phones get the same chart drawn narrower (labels stay legible instead of shrinking with the picture).
COMPACT_WIDTH = 400
COMPACT_HEIGHT = 260


@dataclass(frozen=True)
class ChartBlock:
    """One chart on the page: a heading, the SVG, its table alternative and a note on what it is."""

    key: str
    heading: str
    svg: Markup
    svg_compact: Markup
    table: Markup
    note: str = ""
    signals: int = 0


def severity_of(kind: str) -> Severity:
    """How a signal's marker looks: alerts red diamonds, warnings amber, repairs green rings, prompts grey."""
    if kind in OPENING_KINDS or kind in ("RISK", "RELIABLE_DETERIORATION"):
        return "alert"
    if kind in (UNREPAIRED, NOT_ON_TRACK, OFF_TRACK):
        return "warning"
    if kind == REPAIRED:
        return "good"
    return "info"


def chart_blocks(
    chart: ClientChart,
    *,
    language: str,
    date_label: Callable[[datetime], str],
    models: dict[str, TrajectoryModel] | None = None,
) -> list[ChartBlock]:
    """Every chart of the episode: outcome measures, the Partnership Check (total and components), goal progress."""
    blocks: list[ChartBlock] = []
    for series in chart.outcome:
        blocks.append(_outcome_block(series, language, date_label, (models or {}).get(series.code)))
    for series in chart.alliance:
        blocks.append(_alliance_block(chart, series, language, date_label))
        if series.instrument.components:
            blocks.append(_components_block(series, language, date_label))
    if chart.goals is not None:
        goals = _goals_block(chart, chart.goals, language, date_label)
        if goals is not None:
            blocks.append(goals)
    return blocks


def _title(series: InstrumentSeries, language: str) -> str:
    return series.instrument.title.get(language, series.instrument.title.get("en", series.code))


def _labels(series: InstrumentSeries, date_label: Callable[[datetime], str]) -> tuple[list[str], list[str]]:
    """Session numbers for the axis, and "number (date)" for the table."""
    axis = [str(point.session) for point in series.points]
    table = [f"{point.session} ({date_label(point.completed_at)})" for point in series.points]
    return axis, table


def _marker(signal: ChartSignal, series: InstrumentSeries, language: str, *, on: int = 0) -> Marker:
    evidence = dict(signal.evidence)
    evidence.setdefault("session", signal.index + 1)
    return Marker(
        index=signal.index,
        label=signal_name(signal.kind),
        evidence=describe_signal(signal.kind, evidence, instrument=series.code, language=language),
        series=on,
        severity=severity_of(signal.kind),
    )


def _render(
    key: str,
    heading: str,
    series: Sequence[Series],
    instrument_series: InstrumentSeries,
    date_label: Callable[[datetime], str],
    *,
    y_min: float,
    y_max: float,
    markers: Sequence[Marker] = (),
    cutoff: Threshold | None = None,
    band: Band | None = None,
    expected: Sequence[tuple[float, float] | None] | None = None,
    tension: Sequence[int | None] | None = None,
    y2: tuple[float, float] | None = None,
    note: str = "",
    expected_label: str | None = None,
) -> ChartBlock:
    axis, table_labels = _labels(instrument_series, date_label)
    expected_label = expected_label or _("Expected range (the practice's fitted model)")
    svgs = [
        line_chart(
            series,
            y_min=y_min,
            y_max=y_max,
            title=heading,
            x_labels=axis,
            cutoff=cutoff,
            band=band,
            expected_band=expected,
            expected_label=expected_label,
            markers=markers,
            tension=tension,
            y2=y2,
            x_title=_("Session"),
            width=width,
            height=height,
            chart_id=f"chart-{key}-{suffix}",
            translate=translator(),
        )
        for width, height, suffix in ((CHART_WIDTH, CHART_HEIGHT, "wide"), (COMPACT_WIDTH, COMPACT_HEIGHT, "compact"))
    ]
    table = line_chart_table(
        series,
        title=heading,
        x_labels=table_labels,
        expected_band=expected,
        expected_label=expected_label,
        markers=markers,
        tension=tension,
        x_title=_("Session"),
        translate=translator(),
    )
    return ChartBlock(
        key=key, heading=heading, svg=svgs[0], svg_compact=svgs[1], table=table, note=note, signals=len(markers)
    )


def _outcome_block(
    series: InstrumentSeries,
    language: str,
    date_label: Callable[[datetime], str],
    model: TrajectoryModel | None,
) -> ChartBlock:
    instrument = series.instrument
    title = _title(series, language)
    values = tuple(point.total for point in series.points)
    first = series.first_total
    band = None
    rc = instrument.reliable_change.value if instrument.reliable_change is not None else None
    if first is not None and rc:
        band = Band(
            lo=max(instrument.range_min, first - rc),
            hi=min(instrument.range_max, first + rc),
            label=_("No reliable change from the first score (%(first)s ± %(rc)s)", first=number(first), rc=number(rc)),
        )
    cutoff = None
    if instrument.cutoff is not None:
        cutoff = Threshold(
            instrument.cutoff.value,
            _(
                "Clinical cutoff (%(operator)s %(value)s)",
                operator=instrument.cutoff.operator,
                value=number(instrument.cutoff.value),
            ),
        )
    expected: list[tuple[float, float] | None] | None = None
    if model is not None and first is not None:
        # Before the first score there is no curve: the band starts at the episode's first score.
        offset = next(i for i, value in enumerate(values) if value is not None)
        band_from_first = expected_band(model, first, len(values) - offset, z=DEFAULT_SETTINGS.off_track_z)
        padding: list[tuple[float, float] | None] = [None] * offset
        expected = padding + band_from_first
    direction = _("higher is worse") if instrument.direction == "higher_worse" else _("higher is better")
    return _render(
        f"outcome-{series.code.lower()}",
        _("%(instrument)s by session", instrument=title),
        [Series(title, values, emphasis=True)],
        series,
        date_label,
        y_min=instrument.range_min,
        y_max=instrument.range_max,
        markers=[_marker(signal, series, language) for signal in series.signals],
        cutoff=cutoff,
        band=band,
        expected=expected,
        expected_label=(
            _("Expected range (a synthetic reference cohort, not this practice's own data)")
            if model is not None and model.reference
            else None
        ),
        note=_(
            "Scores %(min)s to %(max)s, %(direction)s.",
            min=number(instrument.range_min),
            max=number(instrument.range_max),
            direction=direction,
        )
        + (
            " " + _("No expected range yet: the practice's model is fitted once it has enough closed episodes.")
            if model is None
            else ""
        ),
    )


def _alliance_block(
    chart: ClientChart, series: InstrumentSeries, language: str, date_label: Callable[[datetime], str]
) -> ChartBlock:
    instrument = series.instrument
    title = _title(series, language)
    lines = [Series(_("Client's total"), tuple(point.total for point in series.points), emphasis=True)]
    therapist = chart.therapist_totals(series)
    if any(value is not None for value in therapist):
        lines.append(Series(_("Your own rating"), tuple(therapist)))
    low = instrument.cutoff.value if instrument.cutoff is not None else None
    has_tension = bool(instrument.items_with_role("tension"))
    note = (
        _("Not a validated instrument: its scores are a prompt for conversation, not a measurement.")
        if not instrument.validated
        else ""
    )
    return _render(
        f"alliance-{series.code.lower()}",
        _("%(instrument)s total by session", instrument=title),
        lines,
        series,
        date_label,
        y_min=instrument.range_min,
        y_max=instrument.range_max,
        markers=[_marker(signal, series, language) for signal in series.signals],
        cutoff=(
            Threshold(low, _("Below %(value)s: talk about the partnership (design)", value=number(low)))
            if low is not None
            else None
        ),
        tension=[point.tension for point in series.points] if has_tension else None,
        note=note,
    )


def _components_block(series: InstrumentSeries, language: str, date_label: Callable[[datetime], str]) -> ChartBlock:
    instrument = series.instrument
    names = list(instrument.components)
    lines = [
        Series(
            component_label(name, language).capitalize(), tuple(point.components.get(name) for point in series.points)
        )
        for name in names
    ]
    markers: list[Marker] = []
    for signal in series.signals:
        if signal.kind != COMPONENT_DROP:
            continue
        dropped = signal.evidence.get("components") or [signal.evidence]
        for entry in dropped:
            component = entry.get("component") if isinstance(entry, dict) else None
            if component in names:
                evidence = dict(signal.evidence)
                evidence.update(entry)
                markers.append(
                    _marker(
                        ChartSignal(signal.kind, signal.administration_id, signal.index, evidence),
                        series,
                        language,
                        on=names.index(str(component)),
                    )
                )
    top = max(instrument.component_item(name).max_value for name in names)
    return _render(
        f"components-{series.code.lower()}",
        _("%(instrument)s: the four parts by session", instrument=_title(series, language)),
        lines,
        series,
        date_label,
        y_min=0,
        y_max=top,
        markers=markers,
        note=_("Each part is rated 0 to 10; a marker shows where one fell well below its own usual level (design)."),
    )


def _goals_block(
    chart: ClientChart, series: InstrumentSeries, language: str, date_label: Callable[[datetime], str]
) -> ChartBlock | None:
    instrument = series.instrument
    goals = list(chart.episode.goals or [])
    lines: list[Series] = []
    for position, item in enumerate(item for item in instrument.items if item.type == "range"):
        values = tuple(point.items.get(item.id) for point in series.points)
        if all(value is None for value in values):
            continue
        name = goals[position] if position < len(goals) and goals[position] else _("Goal %(n)d", n=position + 1)
        lines.append(Series(name, values))
    if not lines:
        return None
    return _render(
        "goals",
        _("Goal progress by session"),
        lines,
        series,
        date_label,
        y_min=instrument.range_min,
        y_max=instrument.range_max,
        markers=[_marker(signal, series, language) for signal in series.signals if signal.kind != LOW_ALLIANCE],
        note=_(
            "Goals in the client's own words, rated 0 (not at all) to 10 (fully there). Not a validated instrument."
        ),
    )
