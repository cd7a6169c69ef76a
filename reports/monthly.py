"""The monthly practice report: plain data in (no database), HTML and PDF out.

The SQL side (services/reporting) fills a ``MonthlyReportData``; this module checks it is internally consistent,
derives the rates, their 95% Wilson intervals and the small-cell suppression, and renders the templates under
``reports/templates/monthly``. Every free-text field is treated as untrusted and reaches the output escaped.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final, Literal, TypeVar

from markupsafe import Markup

from reports import charts
from reports.pdf import render_pdf
from reports.templating import (
    DASH,
    format_hours,
    format_interval,
    format_month,
    format_number,
    format_percent,
    format_signed,
    get_environment,
    parse_period,
)

T = TypeVar("T")

MIN_CELL: Final = 5
TREND_MONTHS: Final = 12
# A trend needs two months with a value to be a line; with fewer, the report says so instead of drawing it.
MIN_TREND_POINTS: Final = 2
NOT_ENOUGH_DATA: Final = "Not enough data to draw this chart"
# At practice scope, beyond these many rows the per-clinician (then per-team) rows live in the team reports only,
# so that the practice report stays within MAX_PRACTICE_PAGES at any practice size.
CLINICIAN_ROWS_MAX: Final = 240
TEAM_ROWS_MAX: Final = 80
MAX_PRACTICE_PAGES: Final = 25
COMPONENTS: Final = ("Rapport", "Mutual goals", "Realistic goals", "Shared responsibility")


# ---------------------------------------------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True)
class Interval:
    """A closed interval of proportions, lo <= hi, both within 0..1."""

    lo: float
    hi: float


def wilson_interval(successes: int, n: int, z: float = 1.96) -> Interval:
    """Return the Wilson score interval for successes out of n (95% for z = 1.96)."""
    if n <= 0:
        raise ValueError("a Wilson interval needs n > 0")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n, got {successes} of {n}")
    if not z > 0:
        raise ValueError("z must be positive")
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # At 0 and n the bound is exactly 0 or 1; floating point would leave it a hair inside.
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(lo, hi)


class Suppressed:
    """Marks a cell withheld because it rests on fewer than the minimum number of cases."""

    _instance: Suppressed | None = None

    def __new__(cls) -> Suppressed:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SUPPRESSED"

    def __bool__(self) -> bool:
        return False


SUPPRESSED: Final = Suppressed()


def suppress_small(n: int, value: T, min_n: int = MIN_CELL) -> T | Suppressed:
    """Return value, or SUPPRESSED when it rests on fewer than min_n cases."""
    if n < 0:
        raise ValueError("a count cannot be negative")
    return SUPPRESSED if n < min_n else value


def _median(values: Sequence[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# ---------------------------------------------------------------------------------------------------------------
# What the report shows (filled by services/reporting; all counts are for the report's month and scope)


@dataclass(frozen=True)
class MonthFigures:
    """One month of the headline figures; twelve of them make the trends, the last is the report's month."""

    period: str
    active_clients: int
    sessions: int
    invitations_sent: int
    invitations_completed: int
    episodes_assessed: int  # closed episodes with a first and a last PHQ-9 and GAD-7
    reliable_improvement: int
    reliable_deterioration: int
    recovery_eligible: int  # closed episodes that were a case at the start
    recovered: int
    partnership_sessions: int  # sessions with a Partnership Check
    partnership_mean: float | None
    ruptures: int  # alliance alerts opened
    alliance_alerts_closed: int
    repaired: int  # alliance alerts closed as repaired
    clients_flagged: int  # active clients with any alert opened
    ack_median_hours: float | None


@dataclass(frozen=True)
class ChannelEngagement:
    """Invitations sent, opened and completed through one channel."""

    channel: str
    sent: int
    opened: int
    completed: int


@dataclass(frozen=True)
class OutcomeFigures:
    """Episode outcomes (NHS Talking Therapies definitions, PHQ-9 with GAD-7) and the not-on-track flag rate."""

    episodes_closed: int
    episodes_assessed: int
    reliable_improvement: int
    reliable_deterioration: int
    recovery_eligible: int
    recovered: int
    reliable_recovery: int
    checkpoint_episodes: int  # episodes that reached the not-on-track checkpoint session this month
    checkpoint_flagged: int
    measure_label: str = "PHQ-9 with GAD-7"


@dataclass(frozen=True)
class NotOnTrackClient:
    """A client currently flagged not on track, by pseudonymous code only."""

    client_code: str
    clinician: str
    measure: str
    first_score: float
    latest_score: float
    sessions: int
    flagged_on: date
    rule: str
    status: str


@dataclass(frozen=True)
class ComponentCount:
    """How many component drops named one Partnership Check component."""

    component: str
    drops: int


@dataclass(frozen=True)
class AllianceFigures:
    """The month's Partnership Check figures: scores, ruptures and repairs."""

    partnership_sessions: int
    partnership_mean: float | None
    clients_rated: int
    clients_with_rupture: int
    ruptures: int
    alliance_alerts_closed: int
    repaired: int
    unrepaired_open: int  # still open at month end with the repair window passed
    repair_days_median: float | None
    tension_reports: int  # sessions with a tension answer of 2 or 3
    therapist_rated_sessions: int
    perspective_gaps: int
    component_drops: tuple[ComponentCount, ...] = ()


@dataclass(frozen=True)
class AlertKindFigures:
    """Alerts of one kind opened, acknowledged and resolved in the month."""

    kind: str
    opened: int
    acknowledged: int
    resolved: int


@dataclass(frozen=True)
class WorkflowFigures:
    """How the alert and review workflow ran: volumes, response times, reviews."""

    alerts: tuple[AlertKindFigures, ...]
    active_clients: int
    clients_flagged: int
    acknowledged: int
    ack_median_hours: float | None
    ack_p90_hours: float | None
    escalations: int
    risk_alerts: int
    risk_ack_median_minutes: float | None
    risk_ack_p90_minutes: float | None
    risk_within_window: int
    risk_window_minutes: int
    reviews_opened: int
    reviews_completed_on_time: int
    reviews_completed_late: int
    reviews_overdue: int


@dataclass(frozen=True)
class ClinicianFigures:
    """One clinician's month; rates are derived here and suppressed below the minimum cell size."""

    name: str
    caseload: int
    invitations_sent: int
    invitations_completed: int
    episodes_assessed: int
    reliable_improvement: int
    reliable_deterioration: int
    recovery_eligible: int
    recovered: int
    partnership_sessions: int
    ruptures: int
    alliance_alerts_closed: int
    repaired: int
    clients_flagged: int
    not_on_track: int = 0  # clients flagged not on track at month end (the list's rows of this clinician)
    team: str = ""


@dataclass(frozen=True)
class Definition:
    """A term used in the report and what it means."""

    term: str
    text: str


@dataclass(frozen=True)
class SettingInForce:
    """A threshold or setting that produced this month's figures, and its basis."""

    name: str
    value: str
    basis: str


@dataclass(frozen=True)
class Citation:
    """A finding from the literature and where it comes from."""

    finding: str
    source: str


DEFAULT_DEFINITIONS: Final = (
    Definition(
        "Completion rate",
        "Questionnaire invitations completed in the month, out of those sent in the month, by any channel.",
    ),
    Definition(
        "Reliable improvement",
        "PHQ-9 down by 6 or more, or GAD-7 down by 4 or more, from the first to the last score of an episode, with "
        "no reliable deterioration on the other measure. Out of episodes closed in the month with a first and "
        "a last score on both measures.",
    ),
    Definition(
        "Reliable deterioration",
        "PHQ-9 up by 6 or more, or GAD-7 up by 4 or more, with no reliable improvement on the other measure. "
        "Same denominator as reliable improvement.",
    ),
    Definition(
        "Recovery",
        "A case at the start (PHQ-9 10 or more, or GAD-7 8 or more) and below both cutoffs at the end. Out of "
        "episodes closed in the month that were a case at the start. Reliable recovery: recovery together "
        "with reliable improvement, on the same denominator.",
    ),
    Definition(
        "Not on track",
        "At the checkpoint session a client is still at or above the cutoff and has improved by less than half "
        "the reliable-change value since the first score. A rule of thumb (heuristic), not a fitted model, "
        "until the practice has enough closed episodes to fit its own expected-change curves.",
    ),
    Definition(
        "Rupture",
        "An alliance alert opened by a Partnership Check signal: a total 2 SD below the client's own mean, a "
        "reliable drop from the last session, tension reported, a component 3 points below its own mean, or a "
        "therapist rating well above the client's. Rates are per 100 sessions with a Partnership Check.",
    ),
    Definition(
        "Repaired / unrepaired",
        "Repaired: the alert closed because the total returned to its pre-rupture level with no new signal. "
        "Share repaired is out of alliance alerts closed in the month. Unrepaired: still open at month end "
        "after the repair window.",
    ),
    Definition(
        "Flag rate",
        "Active clients with any alert opened in the month, out of all active clients. Feedback systems are "
        "usually tuned to flag about 15%; far more is noise, far fewer may miss clients.",
    ),
    Definition(
        "Time to acknowledge",
        "From an alert opening to a clinician acknowledging it: median and 90th percentile over alerts "
        "acknowledged in the month.",
    ),
    Definition(
        "95% intervals",
        "Wilson score intervals for proportions: the range of rates compatible with the data. With few cases they "
        "are wide; a difference between months or clinicians inside overlapping intervals may be chance.",
    ),
    Definition(
        "Suppressed cells",
        "Rates resting on fewer than the minimum number of cases are not shown, to protect privacy and because "
        "rates on so few cases mislead.",
    ),
)

DEFAULT_SETTINGS: Final = (
    SettingInForce("PHQ-9 caseness / reliable change", "10 or more / 6 points", "NHS Talking Therapies"),
    SettingInForce("GAD-7 caseness / reliable change", "8 or more / 4 points", "NHS Talking Therapies"),
    SettingInForce("Not-on-track checkpoint", "session 4, improved < half the reliable change", "design heuristic"),
    SettingInForce("Partnership Check deviation", "2 SD below own mean, SD floor 3.0", "Stiles 2004; Gumz 2012"),
    SettingInForce("Partnership Check reliable drop", "5.37 points", "design default (SD 5, reliability .85)"),
    SettingInForce("Partnership Check low score", "below 36 of 40 (prompt only, no alert)", "session-rating use"),
    SettingInForce("Component drop / perspective gap", "3 points / 6 points", "design"),
    SettingInForce("Repair window / silence window", "3 sessions / 14 days", "design"),
    SettingInForce("Risk response window", "60 minutes", "practice setting"),
    SettingInForce("Smallest cell shown", f"{MIN_CELL} cases", "report setting"),
)

EVIDENCE: Final = (
    Citation(
        "Repaired ruptures go with better outcomes: r = .29, d = .62 (11 studies, 1,314 patients).",
        "Eubanks, Muran & Safran (2018)",
    ),
    Citation(
        "Progress feedback: d = 0.15 overall and 0.17 for not-on-track cases; dropout odds ratio 1.19 "
        "(58 studies, 21,699 patients).",
        "de Jong et al. (2021)",
    ),
    Citation(
        "With clinical support tools for not-on-track cases, effects of about g = 0.36 to 0.53.",
        "Barkham et al. (2023), review",
    ),
    Citation("PCOMS feedback: g = 0.27.", "Østergård et al. (2018)"),
    Citation(
        "Ruptures were seen in 46% of clients in one PTSD trial; unrepaired ruptures predicted worse outcome.",
        "McLaughlin et al. (2014)",
    ),
    Citation(
        "In primary care, 10.7% of clients showed a rupture pattern and 14.7% a repair pattern.",
        "Larsson et al. (2018)",
    ),
    Citation("Reliable change index and clinical significance.", "Jacobson & Truax (1991)"),
    Citation("Score interval for a proportion.", "Wilson (1927)"),
)


@dataclass(frozen=True)
class FidelityLine:
    """Was the feedback used? One clinician's (or the whole scope's) counts for the month."""

    name: str
    administrations: int = 0
    viewed: int = 0
    briefs: int = 0
    discussed: int = 0
    alerts_opened: int = 0
    alerts_acted_on: int = 0
    risk_alerts: int = 0
    risk_in_window: int = 0


@dataclass(frozen=True)
class FidelityKind:
    """Alerts of one kind opened in the month: how many were acted on, and the median hours to the first action."""

    label: str
    opened: int
    acted_on: int
    median_hours: float | None


@dataclass(frozen=True)
class FidelityFigures:
    """The report's "was the feedback used?" section (services.reporting.fidelity)."""

    total: FidelityLine
    clinicians: tuple[FidelityLine, ...]
    kinds: tuple[FidelityKind, ...]
    risk_window_minutes: int


@dataclass(frozen=True)
class MethodsData:
    """The methods page: definitions, the thresholds in force, and the evidence cited."""

    definitions: tuple[Definition, ...] = DEFAULT_DEFINITIONS
    settings: tuple[SettingInForce, ...] = DEFAULT_SETTINGS
    citations: tuple[Citation, ...] = EVIDENCE


@dataclass(frozen=True)
class MonthlyReportData:
    """Everything one monthly report shows, as plain data (no database objects)."""

    practice_name: str
    scope_label: str
    period: str  # YYYY-MM
    generated_on: date
    engagement: tuple[ChannelEngagement, ...]
    outcomes: OutcomeFigures
    not_on_track: tuple[NotOnTrackClient, ...]
    alliance: AllianceFigures
    workflow: WorkflowFigures
    clinicians: tuple[ClinicianFigures, ...]
    trend: tuple[MonthFigures, ...]  # oldest first, ending with the report's month; up to 12
    methods: MethodsData = field(default_factory=MethodsData)
    min_cell: int = MIN_CELL
    # False at practice scope: the not-on-track clients are counted per team and clinician, and their codes are
    # listed in the team and clinician reports named in client_lists_in.
    list_clients: bool = True
    client_lists_in: tuple[str, ...] = ()
    # Was the feedback used? (None when the data comes without it, as in the synthetic sample.)
    fidelity: FidelityFigures | None = None

    def __post_init__(self) -> None:
        problems = check_report_data(self)
        if problems:
            raise ValueError("inconsistent monthly report data: " + "; ".join(problems))


def _previous_period(period: str) -> str:
    year, month = parse_period(period)
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def _walk_counts(obj: object, path: str, problems: list[str]) -> None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            if f.name == "list_clients":
                continue  # a switch, not a count
            _walk_counts(getattr(obj, f.name), f"{path}.{f.name}" if path else f.name, problems)
    elif isinstance(obj, tuple):
        for i, item in enumerate(obj):
            _walk_counts(item, f"{path}[{i}]", problems)
    elif isinstance(obj, bool):
        problems.append(f"{path} is a boolean")
    elif isinstance(obj, int):
        if obj < 0:
            problems.append(f"{path} is negative")
    elif isinstance(obj, float) and not math.isfinite(obj):
        problems.append(f"{path} is not a finite number")


def check_report_data(data: MonthlyReportData) -> list[str]:
    """List what is wrong with the data (empty when consistent): periods, counts, and parts that must agree."""
    problems: list[str] = []
    try:
        parse_period(data.period)
    except ValueError as exc:
        return [str(exc)]
    if data.min_cell < 1:
        problems.append("min_cell must be at least 1")
    _walk_counts(data, "", problems)
    if not 1 <= len(data.trend) <= TREND_MONTHS:
        problems.append(f"trend must hold 1 to {TREND_MONTHS} months")
        return problems
    if data.trend[-1].period != data.period:
        problems.append("the last trend month must be the report's period")
    for older, newer in zip(data.trend, data.trend[1:], strict=False):
        try:
            if _previous_period(newer.period) != older.period:
                problems.append(f"trend months are not consecutive at {newer.period}")
        except ValueError as exc:
            problems.append(str(exc))

    def at_most(part: str, successes: int, n: int) -> None:
        if successes > n:
            problems.append(f"{part}: {successes} out of {n}")

    for m in data.trend:
        at_most(f"{m.period} completed", m.invitations_completed, m.invitations_sent)
        at_most(f"{m.period} reliable improvement", m.reliable_improvement, m.episodes_assessed)
        at_most(f"{m.period} reliable deterioration", m.reliable_deterioration, m.episodes_assessed)
        at_most(f"{m.period} recovered", m.recovered, m.recovery_eligible)
        at_most(f"{m.period} ruptures", m.ruptures, m.partnership_sessions)
        at_most(f"{m.period} repaired", m.repaired, m.alliance_alerts_closed)
        at_most(f"{m.period} flagged", m.clients_flagged, m.active_clients)
    for ch in data.engagement:
        at_most(f"channel {ch.channel!r} opened", ch.opened, ch.sent)
        at_most(f"channel {ch.channel!r} completed", ch.completed, ch.sent)
    o = data.outcomes
    at_most("episodes assessed", o.episodes_assessed, o.episodes_closed)
    at_most("recovery eligible", o.recovery_eligible, o.episodes_closed)
    at_most("reliable recovery", o.reliable_recovery, o.recovered)
    at_most("checkpoint flagged", o.checkpoint_flagged, o.checkpoint_episodes)
    a = data.alliance
    at_most("clients with a rupture", a.clients_with_rupture, a.clients_rated)
    at_most("perspective gaps", a.perspective_gaps, a.therapist_rated_sessions)
    w = data.workflow
    at_most("risk alerts answered within the window", w.risk_within_window, w.risk_alerts)
    for c in data.clinicians:
        at_most(f"{c.name!r} completed", c.invitations_completed, c.invitations_sent)
        at_most(f"{c.name!r} reliable improvement", c.reliable_improvement, c.episodes_assessed)
        at_most(f"{c.name!r} reliable deterioration", c.reliable_deterioration, c.episodes_assessed)
        at_most(f"{c.name!r} recovered", c.recovered, c.recovery_eligible)
        at_most(f"{c.name!r} ruptures", c.ruptures, c.partnership_sessions)
        at_most(f"{c.name!r} repaired", c.repaired, c.alliance_alerts_closed)
        at_most(f"{c.name!r} flagged", c.clients_flagged, c.caseload)
        at_most(f"{c.name!r} not on track", c.not_on_track, c.caseload)

    # The summary page reads the last trend month: it must say what the detailed sections say.
    last = data.trend[-1]
    agreements: list[tuple[str, object, object]] = [
        ("invitations sent", last.invitations_sent, sum(ch.sent for ch in data.engagement)),
        ("invitations completed", last.invitations_completed, sum(ch.completed for ch in data.engagement)),
        ("episodes assessed", last.episodes_assessed, o.episodes_assessed),
        ("reliable improvement", last.reliable_improvement, o.reliable_improvement),
        ("reliable deterioration", last.reliable_deterioration, o.reliable_deterioration),
        ("recovery eligible", last.recovery_eligible, o.recovery_eligible),
        ("recovered", last.recovered, o.recovered),
        ("Partnership sessions", last.partnership_sessions, a.partnership_sessions),
        ("ruptures", last.ruptures, a.ruptures),
        ("alliance alerts closed", last.alliance_alerts_closed, a.alliance_alerts_closed),
        ("repaired", last.repaired, a.repaired),
        ("active clients", last.active_clients, w.active_clients),
        ("clients flagged", last.clients_flagged, w.clients_flagged),
    ]
    for name, in_trend, in_section in agreements:
        if in_trend != in_section:
            problems.append(f"{name}: {in_trend} in the trend's last month but {in_section} in its section")
    for name, x, y in (
        ("Partnership mean", last.partnership_mean, a.partnership_mean),
        ("median time to acknowledge", last.ack_median_hours, w.ack_median_hours),
    ):
        if (x is None) != (y is None) or (x is not None and y is not None and abs(x - y) > 1e-9):
            problems.append(f"{name}: {x} in the trend's last month but {y} in its section")
    return problems


# ---------------------------------------------------------------------------------------------------------------
# The view model: strings and markup the templates place, computed once here


@dataclass(frozen=True)
class Cell:
    """A formatted table cell: the value, its interval beneath, or a suppressed dash."""

    text: str
    interval: str = ""
    suppressed: bool = False
    basis: str = ""


def rate_cell(successes: int, n: int, *, min_n: int = MIN_CELL, per: int = 1, digits: int = 0) -> Cell:
    """Format successes out of n as a rate with its 95% Wilson interval, suppressed below min_n cases."""
    if suppress_small(n, True, min_n) is SUPPRESSED:
        return Cell(DASH, suppressed=True, basis=f"n = {n}")
    interval = wilson_interval(successes, n)
    if per == 1:
        return Cell(
            format_percent(successes / n, digits),
            f"({format_interval((interval.lo, interval.hi), digits)})",
            basis=f"{format_number(successes)} of {format_number(n)}",
        )
    return Cell(
        format_number(successes / n * per, 1),
        f"({format_interval((interval.lo * per, interval.hi * per), 1, percent=False)})",
        basis=f"{format_number(successes)} in {format_number(n)}",
    )


@dataclass(frozen=True)
class KeyFigure:
    """One row of the summary table."""

    label: str
    value: Cell
    previous: Cell
    change: str
    spark: Markup
    note: str = ""


@dataclass(frozen=True)
class _Metric:
    label: str
    kind: Literal["count", "rate", "per100", "mean", "hours"]
    numerator: Callable[[MonthFigures], int] | None = None
    denominator: Callable[[MonthFigures], int] | None = None
    value: Callable[[MonthFigures], float | None] | None = None
    chart_max: float | None = None
    note: str = ""
    cases: str = ""  # what the denominator counts, for "not enough data" ("closed episodes")


METRICS: Final = (
    _Metric("Active clients", "count", value=lambda m: m.active_clients),
    _Metric("Sessions", "count", value=lambda m: m.sessions),
    _Metric(
        "Questionnaires completed",
        "rate",
        lambda m: m.invitations_completed,
        lambda m: m.invitations_sent,
        note="of invitations sent",
        cases="invitations sent",
    ),
    _Metric(
        "Reliable improvement",
        "rate",
        lambda m: m.reliable_improvement,
        lambda m: m.episodes_assessed,
        note="of closed episodes",
        cases="closed episodes with scores",
    ),
    _Metric(
        "Recovery",
        "rate",
        lambda m: m.recovered,
        lambda m: m.recovery_eligible,
        note="of cases at start",
        cases="closed episodes that were a case at the start",
    ),
    _Metric(
        "Reliable deterioration",
        "rate",
        lambda m: m.reliable_deterioration,
        lambda m: m.episodes_assessed,
        note="of closed episodes",
        cases="closed episodes with scores",
    ),
    _Metric("Mean Partnership score", "mean", value=lambda m: m.partnership_mean, note="0-40"),
    _Metric(
        "Ruptures per 100 sessions",
        "per100",
        lambda m: m.ruptures,
        lambda m: m.partnership_sessions,
        note="rated sessions",
        cases="rated sessions",
    ),
    _Metric(
        "Ruptures repaired",
        "rate",
        lambda m: m.repaired,
        lambda m: m.alliance_alerts_closed,
        note="of alliance alerts closed",
        cases="alliance alerts closed",
    ),
    _Metric(
        "Clients flagged",
        "rate",
        lambda m: m.clients_flagged,
        lambda m: m.active_clients,
        note="of active clients",
        cases="active clients",
    ),
    _Metric("Median time to acknowledge", "hours", value=lambda m: m.ack_median_hours, cases="alert acknowledged"),
)


def _metric_value(metric: _Metric, m: MonthFigures, min_n: int) -> float | None:
    if metric.numerator is not None and metric.denominator is not None:
        n = metric.denominator(m)
        if n < min_n:
            return None
        return metric.numerator(m) / n * (100 if metric.kind == "per100" else 1)
    assert metric.value is not None  # every metric has a value or a ratio
    value = metric.value(m)
    return None if value is None else float(value)


def _metric_cell(metric: _Metric, m: MonthFigures | None, min_n: int) -> Cell:
    if m is None:
        return Cell(DASH)
    if metric.numerator is not None and metric.denominator is not None:
        per = 100 if metric.kind == "per100" else 1
        return rate_cell(metric.numerator(m), metric.denominator(m), min_n=min_n, per=per)
    value = _metric_value(metric, m, min_n)
    if metric.kind == "hours":
        return Cell(format_hours(value))
    return Cell(format_number(value, 1 if metric.kind == "mean" else 0))


def _metric_change(metric: _Metric, now: MonthFigures, before: MonthFigures | None, min_n: int) -> str:
    if before is None:
        return DASH
    a, b = _metric_value(metric, now, min_n), _metric_value(metric, before, min_n)
    if a is None or b is None:
        return DASH
    if metric.kind == "rate":
        return format_signed((a - b) * 100, 0, " pts")
    if metric.kind == "hours":
        return format_signed(a - b, 1, " h")
    return format_signed(a - b, 1 if metric.kind in ("mean", "per100") else 0)


def _metric_format(metric: _Metric) -> charts.ValueFormat:
    if metric.kind == "rate":
        return lambda v: format_percent(v)
    if metric.kind == "hours":
        return format_hours
    if metric.kind in ("mean", "per100"):
        return lambda v: format_number(v, 1)
    return lambda v: format_number(v)


def _tick_format(metric: _Metric) -> charts.ValueFormat:
    if metric.kind == "rate":
        return lambda v: format_percent(v)
    if metric.kind == "hours":
        # format_plain, not whole hours: an axis of 0, 0.5, 1 and 1.5 h must not read "0 h, 0 h, 1 h, 2 h".
        return lambda v: f"{charts.format_plain(v)} h"
    return lambda v: charts.format_plain(v)


def _month_label(period: str) -> str:
    year, _ = parse_period(period)
    return f"{format_month(period, short=True)[:3]} \u2019{year % 100:02d}"


def key_figures(data: MonthlyReportData) -> list[KeyFigure]:
    """The summary table: each headline figure this month, last month, the change and a 12-month sparkline."""
    now = data.trend[-1]
    before = data.trend[-2] if len(data.trend) > 1 else None
    labels = [_month_label(m.period) for m in data.trend]
    rows = []
    for metric in METRICS:
        values = [_metric_value(metric, m, data.min_cell) for m in data.trend]
        enough = sum(v is not None for v in values) >= MIN_TREND_POINTS
        rows.append(
            KeyFigure(
                label=metric.label,
                value=_metric_cell(metric, now, data.min_cell),
                previous=_metric_cell(metric, before, data.min_cell),
                change=_metric_change(metric, now, before, data.min_cell),
                # An empty sparkline is a chart of nothing: the cell says so in words instead.
                spark=charts.sparkline(
                    values,
                    title=f"{metric.label}, last {len(values)} months",
                    labels=labels,
                    value_format=_metric_format(metric),
                    y_range=(0.0, 1.0) if metric.kind == "rate" else None,
                )
                if enough
                else Markup(""),
                note=metric.note,
            )
        )
    return rows


def _trend_values(data: MonthlyReportData, metric: _Metric) -> list[charts.TrendValue]:
    points = []
    for m in data.trend:
        label = _month_label(m.period)
        value = _metric_value(metric, m, data.min_cell)
        lo = hi = None
        if value is not None and metric.numerator is not None and metric.denominator is not None:
            interval = wilson_interval(metric.numerator(m), metric.denominator(m))
            scale = 100 if metric.kind == "per100" else 1
            lo, hi = interval.lo * scale, interval.hi * scale
        points.append(charts.TrendValue(label, value, lo, hi))
    return points


@dataclass(frozen=True)
class ChartBlock:
    """A chart with its visible title and its text alternative; with empty set, a sentence stands in for the chart."""

    title: str
    svg: Markup
    text: str
    empty: str = ""


def no_chart(title: str, sentence: str) -> ChartBlock:
    """A chart block that says in a sentence why there is no chart (never an empty set of axes)."""
    return ChartBlock(title, Markup(""), sentence, empty=sentence)


def _not_enough(reason: str) -> str:
    return f"{NOT_ENOUGH_DATA}: {reason}"


_MONTH_WORDS: Final = (
    "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten", "Eleven", "Twelve",
)  # fmt: skip


def trends_heading(months: int) -> str:
    """The trends page's title for the months it shows ("Six-month trends", never twelve over six)."""
    if 1 <= months <= len(_MONTH_WORDS):
        return f"{_MONTH_WORDS[months - 1]}-month trends"
    return f"Trends over {months} months"


def _trend_requirement(metric: _Metric, min_n: int) -> str:
    if metric.numerator is not None and metric.denominator is not None:
        return f"{min_n} or more {metric.cases}"
    if metric.kind == "hours":
        return f"an {metric.cases}"
    return "a value"


def _no_trend(title: str, metric: _Metric, values: Sequence[charts.TrendValue], min_n: int) -> ChartBlock:
    present = [v for v in values if v.value is not None]
    needed = _trend_requirement(metric, min_n)
    if not present:
        reason = f"no month shown had {needed}."
    else:
        last = present[-1]
        assert last.value is not None  # filtered above
        reason = f"only {last.label} had {needed} ({_metric_format(metric)(last.value)})."
    return no_chart(title, _not_enough(reason))


TREND_PANELS: Final = (
    "Questionnaires completed",
    "Reliable improvement",
    "Recovery",
    "Reliable deterioration",
    "Mean Partnership score",
    "Ruptures per 100 sessions",
    "Ruptures repaired",
    "Clients flagged",
    "Median time to acknowledge",
    "Active clients",
)


def trend_panels(data: MonthlyReportData) -> list[ChartBlock]:
    """The trends page: one chart per headline figure, rates with their 95% intervals as a band."""
    by_label = {m.label: m for m in METRICS}
    panels = []
    for label in TREND_PANELS:
        metric = by_label[label]
        values = _trend_values(data, metric)
        fmt = _metric_format(metric)
        title = f"{label} ({metric.note})" if metric.note else label
        if sum(v.value is not None for v in values) < MIN_TREND_POINTS:
            panels.append(_no_trend(title, metric, values, data.min_cell))
            continue
        present = [v for tv in values for v in (tv.value, tv.hi) if v is not None]
        if metric.kind == "rate":
            y_min, y_max = 0.0, 1.0
        elif metric.kind == "mean":
            y_min, y_max = 0.0, 40.0
        else:
            y_min, y_max = 0.0, charts.nice_ceiling(max(present, default=1.0) * 1.1, 4)
            if metric.kind == "hours":
                y_max = max(y_max, 1.0)  # ticks of at least a quarter of an hour
        reference = charts.Threshold(0.15, "usual target 15%") if label == "Clients flagged" else None
        panels.append(
            ChartBlock(
                title=title,
                svg=charts.trend_chart(
                    values,
                    title=title,
                    y_min=y_min,
                    y_max=y_max,
                    value_format=fmt,
                    tick_format=_tick_format(metric),
                    reference=reference,
                    width=330,
                    height=104,
                ),
                text=charts.trend_text(values, title=title, value_format=fmt, with_title=False),
            )
        )
    return panels


@dataclass(frozen=True)
class Row:
    """A labelled row of cells."""

    label: str
    cells: tuple[Cell, ...]
    note: str = ""


@dataclass(frozen=True)
class Fact:
    """A single figure with a label and a line of context."""

    label: str
    value: str
    detail: str = ""
    interval: str = ""
    suppressed: bool = False


def _fact(label: str, cell: Cell, detail: str = "") -> Fact:
    return Fact(label, cell.text, detail or cell.basis, cell.interval, cell.suppressed)


def _count(n: int) -> Cell:
    return Cell(format_number(n))


def _engagement(data: MonthlyReportData) -> dict[str, Any]:
    rows = []
    min_n = data.min_cell
    month = format_month(data.period)
    for ch in sorted(data.engagement, key=lambda c: (c.channel.casefold(), c.channel)):
        rows.append(
            Row(
                ch.channel,
                (
                    _count(ch.sent),
                    _count(ch.opened),
                    rate_cell(ch.opened, ch.sent, min_n=min_n),
                    _count(ch.completed),
                    rate_cell(ch.completed, ch.sent, min_n=min_n),
                ),
            )
        )
    sent = sum(ch.sent for ch in data.engagement)
    opened = sum(ch.opened for ch in data.engagement)
    completed = sum(ch.completed for ch in data.engagement)
    total = Row(
        "All channels",
        (
            _count(sent),
            _count(opened),
            rate_cell(opened, sent, min_n=min_n),
            _count(completed),
            rate_cell(completed, sent, min_n=min_n),
        ),
    )
    clinicians = _sorted_clinicians(data.clinicians)
    chart: ChartBlock
    if len(clinicians) <= 40:
        bars = []
        for c in clinicians:
            if c.invitations_sent < min_n:
                bars.append(charts.Bar(c.name, None, note=f"fewer than {min_n} invitations: not shown"))
                continue
            iv = wilson_interval(c.invitations_completed, c.invitations_sent)
            bars.append(charts.Bar(c.name, c.invitations_completed / c.invitations_sent, iv.lo, iv.hi))
        title = "Completion rate by clinician (sorted by name, not ranked)"
        if all(b.value is None for b in bars):
            chart = no_chart(title, _not_enough(f"no clinician sent {min_n} or more invitations in {month}."))
        else:
            chart = ChartBlock(
                title,
                charts.bar_chart(bars, title=title, x_max=1.0, value_format=format_percent, width=660),
                charts.bar_text(bars, title=title, value_format=format_percent),
            )
    else:
        edges = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)
        shown = [c for c in clinicians if c.invitations_sent >= min_n]
        bars = []
        for lo, hi in itertools.pairwise(edges):
            count = sum(1 for c in shown if lo <= c.invitations_completed / c.invitations_sent < hi)
            label = f"{format_percent(lo)} to {format_percent(min(hi, 1.0))}"
            bars.append(charts.Bar(label, float(count)))
        title = f"Clinicians by completion rate ({len(shown)} with {min_n} or more invitations)"
        x_max = charts.nice_ceiling(max((b.value or 0.0 for b in bars), default=1.0))
        if not shown:
            chart = no_chart(title, _not_enough(f"no clinician sent {min_n} or more invitations in {month}."))
        else:
            chart = ChartBlock(
                title,
                charts.bar_chart(bars, title=title, x_max=x_max, value_format=format_number, width=660),
                charts.bar_text(bars, title=title, value_format=format_number),
            )
    return {"rows": rows, "total": total, "chart": chart}


def _outcomes(data: MonthlyReportData) -> dict[str, Any]:
    o = data.outcomes
    min_n = data.min_cell
    rows = [
        ("Reliable improvement", o.reliable_improvement, o.episodes_assessed, "closed episodes with scores"),
        ("Reliable deterioration", o.reliable_deterioration, o.episodes_assessed, "closed episodes with scores"),
        ("Recovery", o.recovered, o.recovery_eligible, "cases at the start"),
        ("Reliable recovery", o.reliable_recovery, o.recovery_eligible, "cases at the start"),
    ]
    table = [Row(label, (_count(k), _count(n), rate_cell(k, n, min_n=min_n)), note) for label, k, n, note in rows]
    bars = []
    for label, k, n, _ in rows:
        if n < min_n:
            bars.append(charts.Bar(label, None, note=f"fewer than {min_n} episodes: not shown"))
        else:
            iv = wilson_interval(k, n)
            bars.append(charts.Bar(label, k / n, iv.lo, iv.hi))
    title = f"Episode outcomes, {o.measure_label}"
    not_on_track = sorted(
        data.not_on_track, key=lambda c: (c.clinician.casefold(), c.clinician, c.client_code, c.flagged_on)
    )
    if all(b.value is None for b in bars):
        reason = f"fewer than {min_n} episodes with scores closed in {format_month(data.period)}."
        chart = no_chart(title, _not_enough(reason))
    else:
        chart = ChartBlock(
            title,
            charts.bar_chart(bars, title=title, x_max=1.0, value_format=format_percent, width=660),
            charts.bar_text(bars, title=title, value_format=format_percent),
        )
    return {
        "o": o,
        "rows": table,
        "chart": chart,
        "checkpoint": _fact(
            "Flagged not on track at the checkpoint",
            rate_cell(o.checkpoint_flagged, o.checkpoint_episodes, min_n=min_n),
        ),
        "not_on_track": not_on_track,
    }


def _alliance(data: MonthlyReportData) -> dict[str, Any]:
    a = data.alliance
    min_n = data.min_cell
    facts = [
        Fact(
            "Mean Partnership score",
            format_number(a.partnership_mean, 1),
            f"0-40, over {format_number(a.partnership_sessions)} rated sessions",
        ),
        _fact("Ruptures per 100 sessions", rate_cell(a.ruptures, a.partnership_sessions, min_n=min_n, per=100)),
        _fact(
            "Clients with a rupture",
            rate_cell(a.clients_with_rupture, a.clients_rated, min_n=min_n),
        ),
        _fact("Ruptures repaired", rate_cell(a.repaired, a.alliance_alerts_closed, min_n=min_n)),
        Fact("Unrepaired, still open", format_number(a.unrepaired_open), "past the repair window at month end"),
        Fact(
            "Median time to repair",
            DASH if a.repair_days_median is None else f"{format_number(a.repair_days_median, 1)} days",
            "from rupture to the repairing session",
        ),
        Fact("Tension reports", format_number(a.tension_reports), "sessions with tension 'somewhat' or 'a lot'"),
        _fact(
            "Perspective gaps",
            rate_cell(a.perspective_gaps, a.therapist_rated_sessions, min_n=min_n),
            f"therapist rated 6+ points higher; of {format_number(a.therapist_rated_sessions)} sessions rated by both",
        ),
    ]
    drops = {c.component: c.drops for c in a.component_drops}
    names = [*COMPONENTS, *sorted(k for k in drops if k not in COMPONENTS)]
    bars = [charts.Bar(name, float(drops.get(name, 0))) for name in names]
    top = max((b.value or 0.0 for b in bars), default=0.0)
    title = "Component drops, by the Partnership Check component that fell"
    if top <= 0:  # four bars of zero say nothing a sentence cannot
        sentence = f"No Partnership Check component fell below the client's own level in {format_month(data.period)}."
        return {"facts": facts, "chart": no_chart(title, sentence)}
    chart = charts.bar_chart(
        bars,
        title=title,
        x_max=charts.nice_ceiling(max(top, 4.0)),
        value_format=format_number,
        width=660,
    )
    return {"facts": facts, "chart": ChartBlock(title, chart, charts.bar_text(bars, title=title))}


def _workflow(data: MonthlyReportData) -> dict[str, Any]:
    w = data.workflow
    min_n = data.min_cell
    alerts = [Row(k.kind, (_count(k.opened), _count(k.acknowledged), _count(k.resolved))) for k in w.alerts]
    totals = Row(
        "All alerts",
        (
            _count(sum(k.opened for k in w.alerts)),
            _count(sum(k.acknowledged for k in w.alerts)),
            _count(sum(k.resolved for k in w.alerts)),
        ),
    )
    facts = [
        _fact("Clients flagged", rate_cell(w.clients_flagged, w.active_clients, min_n=min_n)),
        Fact(
            "Time to acknowledge",
            format_hours(w.ack_median_hours),
            f"median; 90th percentile {format_hours(w.ack_p90_hours)}; "
            f"{format_number(w.acknowledged)} alerts acknowledged",
        ),
        Fact("Escalations", format_number(w.escalations), "alerts escalated for want of acknowledgement"),
        Fact(
            "Risk alerts",
            format_number(w.risk_alerts),
            f"{format_number(w.risk_within_window)} answered within {w.risk_window_minutes} min",
        ),
        Fact(
            "Risk response time",
            DASH if w.risk_ack_median_minutes is None else f"{format_number(w.risk_ack_median_minutes)} min",
            "median"
            if w.risk_ack_p90_minutes is None
            else f"median; 90th percentile {format_number(w.risk_ack_p90_minutes)} min",
        ),
    ]
    reviews = [
        ("Opened", w.reviews_opened),
        ("Completed on time", w.reviews_completed_on_time),
        ("Completed late", w.reviews_completed_late),
        ("Overdue at month end", w.reviews_overdue),
    ]
    return {"alerts": alerts, "totals": totals, "facts": facts, "reviews": reviews}


def _sorted_clinicians(clinicians: Sequence[ClinicianFigures]) -> list[ClinicianFigures]:
    return sorted(clinicians, key=lambda c: (c.name.casefold(), c.name))


CLINICIAN_HEADERS: Final = (
    "Caseload",
    "Completion",
    "Reliable improve\u00adment",
    "Recovery",
    "Reliable deterio\u00adration",
    "Ruptures per 100 sessions",
    "Ruptures repaired",
    "Clients flagged",
    "Not on track now",
)
NO_TEAM: Final = "No team"


@dataclass(frozen=True)
class RowGroup:
    """Rows under one heading (a team), or ungrouped when the label is empty."""

    label: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class FigureTable:
    """A table of clinicians or teams: the columns shown, the rows in groups, and a note on what is left out."""

    headers: tuple[str, ...]
    groups: tuple[RowGroup, ...]
    note: str = ""


def count_cell(successes: int, n: int, *, min_n: int = MIN_CELL) -> Cell:
    """A count with its share of n and the share's 95% interval beneath, suppressed below min_n cases."""
    if suppress_small(n, True, min_n) is SUPPRESSED:
        return Cell(DASH, suppressed=True, basis=f"n = {n}")
    interval = wilson_interval(successes, n)
    return Cell(
        f"{format_number(successes)} ({format_percent(successes / n)})",
        f"({format_interval((interval.lo, interval.hi))})",
        basis=f"{format_number(successes)} of {format_number(n)}",
    )


def _figure_cells(c: ClinicianFigures, min_n: int) -> tuple[Cell, ...]:
    return (
        _count(c.caseload),
        rate_cell(c.invitations_completed, c.invitations_sent, min_n=min_n),
        rate_cell(c.reliable_improvement, c.episodes_assessed, min_n=min_n),
        rate_cell(c.recovered, c.recovery_eligible, min_n=min_n),
        rate_cell(c.reliable_deterioration, c.episodes_assessed, min_n=min_n),
        rate_cell(c.ruptures, c.partnership_sessions, min_n=min_n, per=100),
        rate_cell(c.repaired, c.alliance_alerts_closed, min_n=min_n),
        rate_cell(c.clients_flagged, c.caseload, min_n=min_n),
        count_cell(c.not_on_track, c.caseload, min_n=min_n),
    )


def _figure_table(groups: Sequence[tuple[str, Sequence[ClinicianFigures]]], min_n: int, who: str) -> FigureTable:
    """Rows of figures; a column suppressed in every row is left out, and a sentence says which and why."""
    cells = [(label, [(c.name, _figure_cells(c, min_n)) for c in members]) for label, members in groups]
    every = [row for _, rows in cells for _, row in rows]
    dropped = {i for i in range(1, len(CLINICIAN_HEADERS)) if every and all(row[i].suppressed for row in every)}
    kept = [i for i in range(len(CLINICIAN_HEADERS)) if i not in dropped]
    note = ""
    if dropped:
        names = ", ".join(CLINICIAN_HEADERS[i].replace("\u00ad", "") for i in sorted(dropped))
        note = (
            f"Not shown by {who} this month, because no {who} had {min_n} or more cases for them: {names}. "
            "The figures for the whole report are in their sections above."
        )

    def row(name: str, row_cells: tuple[Cell, ...]) -> Row:
        shown = tuple(row_cells[i] for i in kept)
        # A row of dashes says why in words: every rate rests on too few cases.
        withheld = len(shown) > 1 and all(c.suppressed for c in shown[1:])
        return Row(name, shown, f"fewer than {min_n} cases for every rate" if withheld else "")

    return FigureTable(
        headers=tuple(CLINICIAN_HEADERS[i] for i in kept),
        groups=tuple(RowGroup(label, tuple(row(name, r) for name, r in rows)) for label, rows in cells),
        note=note,
    )


_SUMMED: Final = tuple(f.name for f in dataclasses.fields(ClinicianFigures) if f.name not in ("name", "team"))


def _by_team(clinicians: Sequence[ClinicianFigures]) -> dict[str, list[ClinicianFigures]]:
    teams: dict[str, list[ClinicianFigures]] = {}
    for c in _sorted_clinicians(clinicians):
        teams.setdefault(c.team or NO_TEAM, []).append(c)
    return dict(sorted(teams.items(), key=lambda kv: (kv[0] == NO_TEAM, kv[0].casefold(), kv[0])))


def team_figures(clinicians: Sequence[ClinicianFigures]) -> list[ClinicianFigures]:
    """Each team's figures as sums over its clinicians (sorted by team name)."""
    return [
        ClinicianFigures(name=team, team=team, **{f: sum(getattr(c, f) for c in members) for f in _SUMMED})
        for team, members in _by_team(clinicians).items()
    ]


def _clinician_tables(data: MonthlyReportData) -> dict[str, Any]:
    """The by-clinician table; at practice scope also the by-team table, each within the practice page budget."""
    min_n = data.min_cell
    clinicians = _sorted_clinicians(data.clinicians)
    practice = not data.list_clients
    teams = _by_team(clinicians)
    grouped = practice and len(teams) > 1
    out: dict[str, Any] = {"teams": None, "clinicians": None, "rows_note": "", "practice": practice}
    if practice and any(c.team for c in clinicians):
        if len(teams) <= TEAM_ROWS_MAX:
            out["teams"] = _figure_table([("", team_figures(clinicians))], min_n, "team")
        else:
            out["rows_note"] = f"With {len(teams)} teams, each team's figures are in its own report."
    if practice and len(clinicians) > CLINICIAN_ROWS_MAX:
        rows_note = f"With {len(clinicians)} clinicians, each clinician's row is in their team's report."
        out["rows_note"] = f"{out['rows_note']} {rows_note}".strip()
        return out
    groups = list(teams.items()) if grouped else [("", clinicians)]
    out["clinicians"] = _figure_table(groups, min_n, "clinician")
    return out


def _where_listed(data: MonthlyReportData) -> str:
    names = data.client_lists_in
    teams = f" ({', '.join(names)})" if 0 < len(names) <= 12 else ""
    return (
        "This practice report lists no clients: each team's and clinician's count of clients not on track is under "
        f"By team and clinician, and the clients themselves are listed by pseudonymous code in the team "
        f"reports{teams} and in each clinician's report."
    )


def _attention(data: MonthlyReportData) -> list[Fact]:
    w, a = data.workflow, data.alliance
    outside = w.risk_alerts - w.risk_within_window
    listed = "listed by client code under Outcomes" if data.list_clients else "counted by team and clinician"
    return [
        Fact(
            "Risk alerts",
            format_number(w.risk_alerts),
            "all answered within the window"
            if outside == 0
            else f"{format_number(outside)} not answered within {w.risk_window_minutes} min",
        ),
        Fact("Reviews overdue", format_number(w.reviews_overdue), "case reviews past their due date at month end"),
        Fact("Unrepaired ruptures", format_number(a.unrepaired_open), "open past the repair window"),
        Fact("Not on track now", format_number(len(data.not_on_track)), listed),
        Fact("Escalations", format_number(w.escalations), "alerts escalated in the month"),
    ]


FIDELITY_HEADERS: Final = (
    "Feedback viewed before the next session",
    "Briefs discussed",
    "Alerts acted on",
    "Risk alerts in the window",
)


def _fidelity_cells(line: FidelityLine, min_n: int) -> tuple[Cell, ...]:
    return (
        rate_cell(line.viewed, line.administrations, min_n=min_n),
        rate_cell(line.discussed, line.briefs, min_n=min_n),
        rate_cell(line.alerts_acted_on, line.alerts_opened, min_n=min_n),
        rate_cell(line.risk_in_window, line.risk_alerts, min_n=min_n),
    )


def _fidelity(data: MonthlyReportData) -> dict[str, Any] | None:
    """The "was the feedback used?" section: four facts, alerts by kind, and a row per clinician (not ranked)."""
    f = data.fidelity
    if f is None:
        return None
    min_n = data.min_cell
    t = f.total
    cells = _fidelity_cells(t, min_n)
    facts = [
        _fact(FIDELITY_HEADERS[0], cells[0], f"of {format_number(t.administrations)} answers with a next session"),
        _fact(FIDELITY_HEADERS[1], cells[1], f"of {format_number(t.briefs)} sessions with answers before them"),
        _fact(FIDELITY_HEADERS[2], cells[2], f"of {format_number(t.alerts_opened)} alerts opened"),
        _fact(
            FIDELITY_HEADERS[3],
            cells[3],
            f"acknowledged within {f.risk_window_minutes} min, of {format_number(t.risk_alerts)}",
        ),
    ]
    kinds = [
        Row(
            k.label,
            (
                _count(k.opened),
                rate_cell(k.acted_on, k.opened, min_n=min_n),
                Cell(DASH) if k.median_hours is None else Cell(format_number(k.median_hours, 1)),
            ),
        )
        for k in f.kinds
    ]
    practice = not data.list_clients
    clinicians = sorted(f.clinicians, key=lambda c: (c.name.casefold(), c.name))
    table: FigureTable | None = None
    note = ""
    if practice and len(clinicians) > CLINICIAN_ROWS_MAX:
        note = f"With {len(clinicians)} clinicians, each clinician's row is in their team's report."
    elif clinicians:
        # As in the by-clinician table: a column withheld in every row is left out, and a sentence says so.
        every = [(c.name, _fidelity_cells(c, min_n)) for c in clinicians]
        kept = [i for i in range(len(FIDELITY_HEADERS)) if not all(cells[i].suppressed for _, cells in every)]
        dropped = [FIDELITY_HEADERS[i] for i in range(len(FIDELITY_HEADERS)) if i not in kept]
        if dropped:
            note = (
                f"Not shown by clinician this month, because no clinician had {min_n} or more cases for them: "
                f"{', '.join(dropped)}. The figures for the whole report are above."
            )
        if kept:
            rows = []
            for name, row_cells in every:
                shown = tuple(row_cells[i] for i in kept)
                withheld = all(cell.suppressed for cell in shown)
                rows.append(Row(name, shown, f"fewer than {min_n} cases for every rate" if withheld else ""))
            headers = tuple(FIDELITY_HEADERS[i] for i in kept)
            table = FigureTable(headers=headers, groups=(RowGroup("", tuple(rows)),))
    return {"facts": facts, "kinds": kinds, "table": table, "rows_note": note}


def report_context(data: MonthlyReportData) -> dict[str, Any]:
    """Everything the monthly templates place, already formatted."""
    previous = data.trend[-2].period if len(data.trend) > 1 else None
    return {
        "data": data,
        "month": format_month(data.period),
        "previous_month": format_month(previous) if previous else None,
        "first_month": format_month(data.trend[0].period),
        "generated_on": data.generated_on.isoformat(),
        "min_cell": data.min_cell,
        "key_figures": key_figures(data),
        "attention": _attention(data),
        "engagement": _engagement(data),
        "outcomes": _outcomes(data),
        "alliance": _alliance(data),
        "workflow": _workflow(data),
        "tables": _clinician_tables(data),
        "fidelity": _fidelity(data),
        "where_listed": "" if data.list_clients else _where_listed(data),
        "trends_heading": trends_heading(len(data.trend)),
        "trend_months": len(data.trend),
        "trends": trend_panels(data) if len(data.trend) >= MIN_TREND_POINTS else [],
        "methods": data.methods,
    }


def render_monthly_html(data: MonthlyReportData) -> str:
    """Render the monthly report as a standalone HTML document (autoescaped; assets referenced relatively)."""
    template = get_environment().get_template("monthly/report.html")
    return template.render(**report_context(data))


def render_monthly_pdf(data: MonthlyReportData) -> bytes:
    """Render the monthly report to PDF through the safe fetcher; fails if anything outside the assets is asked for."""
    return render_pdf(render_monthly_html(data))


# ---------------------------------------------------------------------------------------------------------------
# Synthetic data for tests and previews


_FIRST_NAMES = (
    "Ash", "Blair", "Carey", "Dale", "Ellis", "Frankie", "Glen", "Harper", "Indra", "Jules", "Kit", "Lane",
    "Morgan", "Noor", "Oakley", "Parker", "Quinn", "Reese", "Sasha", "Tam", "Uma", "Vale", "Wren", "Yael",
)  # fmt: skip
_SURNAMES = (
    "Abbott", "Brightwater", "Calloway", "Dunmore", "Everly", "Fairhaven", "Greyson", "Holloway", "Ingleby",
    "Juniper", "Kestrel", "Larkspur", "Merriweather", "Northcote", "Oakshott", "Pemberly", "Quillon", "Rookwood",
    "Silverdale", "Thistlewood", "Umberfield", "Vantry", "Westerleigh", "Yarrowby",
)  # fmt: skip
_CHANNELS = ("Email", "SMS", "Kiosk")
_STATUSES = ("acknowledged", "acknowledged; review booked", "open", "acknowledged; plan changed")


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(1 for _ in range(n) if rng.random() < p)


def _split(rng: random.Random, total: int, weights: Sequence[float]) -> list[int]:
    raw = [total * w / sum(weights) for w in weights]
    parts = [int(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: (parts[i] - raw[i], rng.random()))[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _synthetic_month(rng: random.Random, period: str, scale: float, progress: float) -> MonthFigures:
    """One earlier month; progress runs from 0 (a year ago) to 1 (last month) for a gentle improvement."""
    active = max(int(rng.gauss(100, 6) * scale), 1)
    sessions = int(active * rng.uniform(2.8, 3.4))
    sent = int(sessions * rng.uniform(1.0, 1.1))
    assessed = max(int(rng.gauss(40, 5) * scale), 0)
    eligible = min(assessed, int(assessed * rng.uniform(0.75, 0.9)))
    rated = int(sessions * rng.uniform(0.82, 0.9))
    ruptures = _binomial(rng, rated, 0.045)
    closed = max(ruptures + rng.randint(-2, 2), 0)
    return MonthFigures(
        period=period,
        active_clients=active,
        sessions=sessions,
        invitations_sent=sent,
        invitations_completed=_binomial(rng, sent, 0.68 + 0.08 * progress),
        episodes_assessed=assessed,
        reliable_improvement=_binomial(rng, assessed, 0.46 + 0.06 * progress),
        reliable_deterioration=_binomial(rng, assessed, 0.06),
        recovery_eligible=eligible,
        recovered=_binomial(rng, eligible, 0.42 + 0.06 * progress),
        partnership_sessions=rated,
        partnership_mean=round(rng.gauss(35.3 + 0.4 * progress, 0.25), 2),
        ruptures=ruptures,
        alliance_alerts_closed=closed,
        repaired=_binomial(rng, closed, 0.55 + 0.1 * progress),
        clients_flagged=_binomial(rng, active, 0.15),
        ack_median_hours=round(rng.uniform(6, 20) - 4 * progress, 2),
    )


def sample_monthly_data(
    seed: int = 1,
    *,
    period: str = "2026-10",
    clinicians: int = 8,
    not_on_track: int = 9,
    practice_name: str = "Riverside Talking Therapies (demo)",
    scope_label: str = "Whole practice",
    list_clients: bool = True,
    team_size: int = 8,
) -> MonthlyReportData:
    """Build a consistent, entirely synthetic report for tests and previews (same seed, same data).

    With list_clients False it is a practice report: clinicians in teams of team_size, clients counted, not listed.
    """
    if clinicians < 1:
        raise ValueError("a sample practice needs at least one clinician")
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    year, month = parse_period(period)

    names: list[str] = []
    for i in range(clinicians):
        first = _FIRST_NAMES[(i * 7 + seed) % len(_FIRST_NAMES)]
        last = _SURNAMES[(i * 11 + seed * 3) % len(_SURNAMES)]
        suffix = f" {i // len(_SURNAMES) + 1}" if i >= len(_SURNAMES) else ""
        names.append(f"{first} {last}{suffix}")
    rows: list[ClinicianFigures] = []
    for i, name in enumerate(names):
        small = i % 5 == 4  # some clinicians with small caseloads, so suppression shows
        caseload = rng.randint(2, 4) if small else rng.randint(12, 22)
        sessions = int(caseload * rng.uniform(2.6, 3.6))
        sent = sessions + rng.randint(0, 3)
        assessed = rng.randint(0, 3) if small else rng.randint(4, 9)
        eligible = min(assessed, max(assessed - rng.randint(0, 2), 0))
        recovered = _binomial(rng, eligible, 0.5)
        rated = int(sessions * rng.uniform(0.8, 0.95))
        ruptures = _binomial(rng, rated, 0.04)
        closed = max(ruptures + rng.randint(-1, 2), 0)
        rows.append(
            ClinicianFigures(
                name=name,
                caseload=caseload,
                invitations_sent=sent,
                invitations_completed=_binomial(rng, sent, rng.uniform(0.6, 0.9)),
                episodes_assessed=assessed,
                reliable_improvement=_binomial(rng, assessed, 0.55),
                reliable_deterioration=_binomial(rng, assessed, 0.07),
                recovery_eligible=eligible,
                recovered=recovered,
                partnership_sessions=rated,
                ruptures=ruptures,
                alliance_alerts_closed=closed,
                repaired=_binomial(rng, closed, 0.65),
                clients_flagged=_binomial(rng, caseload, 0.16),
            )
        )

    def total(attr: str) -> int:
        return sum(int(getattr(r, attr)) for r in rows)

    sent_total, completed_total = total("invitations_sent"), total("invitations_completed")
    weights = (0.55, 0.3, 0.15)
    sent_split = _split(rng, sent_total, weights)
    completed_split = _split(rng, completed_total, weights)
    channels = []
    for name, sent, completed in zip(_CHANNELS, sent_split, completed_split, strict=True):
        completed = min(completed, sent)
        opened = min(sent, completed + _binomial(rng, sent - completed, 0.5))
        channels.append(ChannelEngagement(name, sent, opened, completed))
    completed_total = sum(c.completed for c in channels)

    assessed_total = total("episodes_assessed")
    eligible_total = total("recovery_eligible")
    recovered_total = total("recovered")
    outcomes = OutcomeFigures(
        episodes_closed=assessed_total + rng.randint(1, 4),
        episodes_assessed=assessed_total,
        reliable_improvement=total("reliable_improvement"),
        reliable_deterioration=total("reliable_deterioration"),
        recovery_eligible=eligible_total,
        recovered=recovered_total,
        reliable_recovery=_binomial(rng, recovered_total, 0.85),
        checkpoint_episodes=(checkpoint := max(total("caseload") // 4, 1)),
        checkpoint_flagged=_binomial(rng, checkpoint, 0.16),
    )
    rated_total = total("partnership_sessions")
    clients_rated = int(total("caseload") * 0.95)
    mean_score = round(rng.gauss(35.8, 0.4), 2)
    drops = _split(rng, max(total("ruptures") // 2, 1), (0.3, 0.35, 0.2, 0.15))
    alliance = AllianceFigures(
        partnership_sessions=rated_total,
        partnership_mean=mean_score,
        clients_rated=clients_rated,
        clients_with_rupture=min(total("ruptures"), clients_rated),
        ruptures=total("ruptures"),
        alliance_alerts_closed=total("alliance_alerts_closed"),
        repaired=total("repaired"),
        unrepaired_open=rng.randint(0, 4),
        repair_days_median=round(rng.uniform(6, 16), 1),
        tension_reports=rng.randint(3, 12),
        therapist_rated_sessions=(therapist_rated := int(rated_total * 0.6)),
        perspective_gaps=_binomial(rng, therapist_rated, 0.03),
        component_drops=tuple(ComponentCount(c, d) for c, d in zip(COMPONENTS, drops, strict=True)),
    )
    risk = rng.randint(1, 4)
    acknowledged = total("clients_flagged") + rng.randint(2, 8)
    ack_median = round(rng.uniform(3, 14), 2)
    workflow = WorkflowFigures(
        alerts=(
            AlertKindFigures(
                "Alliance", total("ruptures"), max(total("ruptures") - 1, 0), total("alliance_alerts_closed")
            ),
            AlertKindFigures("Outcome", outcomes.checkpoint_flagged + 3, outcomes.checkpoint_flagged + 2, 4),
            AlertKindFigures("Risk", risk, risk, risk),
        ),
        active_clients=total("caseload"),
        clients_flagged=total("clients_flagged"),
        acknowledged=acknowledged,
        ack_median_hours=ack_median,
        ack_p90_hours=round(ack_median * rng.uniform(2.5, 4), 2),
        escalations=rng.randint(0, 3),
        risk_alerts=risk,
        risk_ack_median_minutes=round(rng.uniform(12, 40)),
        risk_ack_p90_minutes=round(rng.uniform(45, 80)),
        risk_within_window=risk - (1 if risk > 2 else 0),
        risk_window_minutes=60,
        reviews_opened=rng.randint(3, 9),
        reviews_completed_on_time=rng.randint(2, 5),
        reviews_completed_late=rng.randint(0, 2),
        reviews_overdue=rng.randint(0, 3),
    )

    periods = []
    y, m = year, month
    for _ in range(TREND_MONTHS):
        periods.append(f"{y}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    periods.reverse()
    scale = total("caseload") / 100
    trend = [_synthetic_month(rng, p, scale, i / (TREND_MONTHS - 2)) for i, p in enumerate(periods[:-1])]
    trend.append(
        MonthFigures(
            period=period,
            active_clients=workflow.active_clients,
            sessions=int(rated_total / 0.88),
            invitations_sent=sent_total,
            invitations_completed=completed_total,
            episodes_assessed=assessed_total,
            reliable_improvement=outcomes.reliable_improvement,
            reliable_deterioration=outcomes.reliable_deterioration,
            recovery_eligible=eligible_total,
            recovered=recovered_total,
            partnership_sessions=rated_total,
            partnership_mean=mean_score,
            ruptures=alliance.ruptures,
            alliance_alerts_closed=alliance.alliance_alerts_closed,
            repaired=alliance.repaired,
            clients_flagged=workflow.clients_flagged,
            ack_median_hours=ack_median,
        )
    )

    flagged = []
    codes = set()
    last_day = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    for _ in range(not_on_track):
        code = "C-" + "".join(rng.choice("23456789ABCDEFGHJKMNPQRSTUVWXYZ") for _ in range(5))
        if code in codes:
            continue
        codes.add(code)
        first_score = float(rng.randint(12, 24))
        measure = rng.choice(("PHQ-9", "GAD-7")) if first_score <= 21 else "PHQ-9"
        flagged.append(
            NotOnTrackClient(
                client_code=code,
                clinician=rng.choice(names),
                measure=measure,
                first_score=first_score,
                latest_score=first_score - rng.randint(-3, 2),
                sessions=rng.randint(4, 12),
                flagged_on=last_day - timedelta(days=rng.randint(0, 60)),
                rule=rng.choice(("Not on track (heuristic)", "Not on track (heuristic)", "Reliable deterioration")),
                status=rng.choice(_STATUSES),
            )
        )
    per_clinician: dict[str, int] = {}
    for client in flagged:
        per_clinician[client.clinician] = per_clinician.get(client.clinician, 0) + 1
    rows = [
        dataclasses.replace(
            r, not_on_track=min(per_clinician.get(r.name, 0), r.caseload), team=f"Team {i // team_size + 1}"
        )
        for i, r in enumerate(rows)
    ]
    return MonthlyReportData(
        practice_name=practice_name,
        scope_label=scope_label,
        period=period,
        generated_on=last_day + timedelta(days=1),
        list_clients=list_clients,
        client_lists_in=tuple(sorted({r.team for r in rows})) if not list_clients else (),
        engagement=tuple(channels),
        outcomes=outcomes,
        not_on_track=tuple(flagged),
        alliance=alliance,
        workflow=workflow,
        clinicians=tuple(rows),
        trend=tuple(trend),
    )
