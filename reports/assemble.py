"""From the database to a monthly report: run the aggregate queries, turn them into MonthlyReportData, render.

The queries (services.reporting.queries) return counts per (month, clinician); everything here is sums over those
rows. The trend's last month and the detailed sections read the same per-month totals, computed once, so the
summary page and the sections agree by construction (check_report_data verifies it again).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from reports.monthly import (
    COMPONENTS,
    DEFAULT_DEFINITIONS,
    EVIDENCE,
    FIDELITY_HEADERS,
    MIN_CELL,
    TREND_MONTHS,
    AlertKindFigures,
    AllianceFigures,
    ChannelEngagement,
    ClinicianFigures,
    ComponentCount,
    Definition,
    FidelityFigures,
    FidelityKind,
    FidelityLine,
    MethodsData,
    MonthFigures,
    MonthlyReportData,
    NotOnTrackClient,
    OutcomeFigures,
    SettingInForce,
    WorkflowFigures,
    render_monthly_html,
)
from reports.pdf import render_pdf
from services.config import Settings
from services.db import utcnow
from services.measures import load_instrument
from services.practice.rules import rule_settings
from services.reporting.fidelity import Fidelity, FidelityRow, fidelity
from services.reporting.periods import Month, ReportScope, month_of, months_ending
from services.reporting.queries import (
    GAD7,
    PHQ9,
    MonthlyAggregates,
    NotOnTrackRow,
    clinician_names,
    first_activity_day,
    monthly_aggregates,
)
from services.signals import (
    NOT_ON_TRACK,
    OFF_TRACK,
    PARTNERSHIP_COMPONENTS,
    RELIABLE_DETERIORATION,
    SignalSettings,
    effective_cutoff,
)

CHANNEL_LABELS = {"email": "Email", "sms": "SMS", "kiosk": "Kiosk", "link": "Link"}
KIND_LABELS = (("alliance", "Alliance"), ("outcome", "Outcome"), ("risk", "Risk"))
RULE_LABELS = {
    RELIABLE_DETERIORATION: "Reliable deterioration",
    OFF_TRACK: "Off track (fitted model)",
    NOT_ON_TRACK: "Not on track (heuristic)",
}
COMPONENT_LABELS = dict(zip(PARTNERSHIP_COMPONENTS, COMPONENTS, strict=True))


def report_signal_settings(session: Session, settings: Settings) -> SignalSettings:
    """The rule thresholds the practice runs with (its versioned settings over CLINICAL.md's defaults)."""
    return rule_settings(session, risk_window_minutes=settings.risk_window_minutes)


# ---------------------------------------------------------------------------------------------------------------
# Sums


@dataclass
class _Totals:
    """Counts for one month, of one clinician or of the whole scope."""

    caseload: int = 0
    clients_flagged: int = 0
    sessions: int = 0
    sent: int = 0
    completed: int = 0
    closed: int = 0
    assessed: int = 0
    reliable_improvement: int = 0
    reliable_deterioration: int = 0
    recovery_eligible: int = 0
    recovered: int = 0
    reliable_recovery: int = 0
    partnership_sessions: int = 0
    partnership_sum: float = 0.0
    raised: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)

    @property
    def partnership_mean(self) -> float | None:
        return self.partnership_sum / self.partnership_sessions if self.partnership_sessions else None


def _totals(aggregates: MonthlyAggregates) -> dict[tuple[str, int | None], _Totals]:
    """Totals per (period, clinician) and per (period, None) for the whole scope, summed in a fixed order."""
    out: dict[tuple[str, int | None], _Totals] = {}

    def both(period: str, clinician_id: int) -> Iterable[_Totals]:
        yield out.setdefault((period, clinician_id), _Totals())
        yield out.setdefault((period, None), _Totals())

    for m in aggregates.months:
        out[(m.period, None)] = _Totals()
    for a in sorted(aggregates.activity, key=lambda r: (r.period, r.clinician_id is None, r.clinician_id or 0)):
        # Distinct clients are counted by the database for each clinician and for the scope as a whole
        # (a client seen by two clinicians is one client of the practice).
        t = out.setdefault((a.period, a.clinician_id), _Totals())
        t.caseload, t.clients_flagged = a.active_clients, a.clients_flagged
    for s in sorted(aggregates.sessions, key=lambda r: (r.period, r.clinician_id)):
        for t in both(s.period, s.clinician_id):
            t.sessions += s.sessions
    for e in sorted(aggregates.engagement, key=lambda r: (r.period, r.clinician_id, r.channel)):
        for t in both(e.period, e.clinician_id):
            t.sent += e.sent
            t.completed += e.completed
    for o in sorted(aggregates.outcomes, key=lambda r: (r.period, r.clinician_id)):
        for t in both(o.period, o.clinician_id):
            t.closed += o.closed
            t.assessed += o.assessed
            t.reliable_improvement += o.reliable_improvement
            t.reliable_deterioration += o.reliable_deterioration
            t.recovery_eligible += o.recovery_eligible
            t.recovered += o.recovered
            t.reliable_recovery += o.reliable_recovery
    for p in sorted(aggregates.partnership, key=lambda r: (r.period, r.clinician_id)):
        for t in both(p.period, p.clinician_id):
            t.partnership_sessions += p.sessions
            t.partnership_sum += p.total_sum
    for al in sorted(aggregates.alerts, key=lambda r: (r.period, r.clinician_id, r.kind)):
        for t in both(al.period, al.clinician_id):
            t.raised[al.kind] = t.raised.get(al.kind, 0) + al.raised
            t.resolved[al.kind] = t.resolved.get(al.kind, 0) + al.resolved
            t.repaired[al.kind] = t.repaired.get(al.kind, 0) + al.repaired
    return out


# ---------------------------------------------------------------------------------------------------------------
# Assembly


def _month_figures(period: str, t: _Totals, ack_median: float | None) -> MonthFigures:
    return MonthFigures(
        period=period,
        active_clients=t.caseload,
        sessions=t.sessions,
        invitations_sent=t.sent,
        invitations_completed=t.completed,
        episodes_assessed=t.assessed,
        reliable_improvement=t.reliable_improvement,
        reliable_deterioration=t.reliable_deterioration,
        recovery_eligible=t.recovery_eligible,
        recovered=t.recovered,
        partnership_sessions=t.partnership_sessions,
        partnership_mean=t.partnership_mean,
        ruptures=t.raised.get("alliance", 0),
        alliance_alerts_closed=t.resolved.get("alliance", 0),
        repaired=t.repaired.get("alliance", 0),
        clients_flagged=t.clients_flagged,
        ack_median_hours=ack_median,
    )


def _shown_not_on_track(rows: Iterable[NotOnTrackRow]) -> list[NotOnTrackRow]:
    """The rows the report shows (and counts): an outcome alert with no outcome score at all has no trajectory."""
    return [r for r in rows if r.first_score is not None or r.latest_score is not None]


def _not_on_track(rows: Iterable[NotOnTrackRow], tz: ZoneInfo) -> tuple[NotOnTrackClient, ...]:
    out = []
    for row in _shown_not_on_track(rows):
        first = row.first_score if row.first_score is not None else row.latest_score
        latest = row.latest_score if row.latest_score is not None else row.first_score
        if first is None or latest is None:
            continue  # an outcome alert with no outcome score at all cannot be shown as a trajectory
        rule = next((RULE_LABELS[k] for k in RULE_LABELS if k in row.rule_kinds), "Outcome alert")
        out.append(
            NotOnTrackClient(
                client_code=row.client_code,
                clinician=row.clinician,
                measure=row.measure,
                first_score=first,
                latest_score=latest,
                sessions=row.sessions,
                flagged_on=row.flagged_at.astimezone(tz).date(),
                rule=rule,
                status="acknowledged" if row.acknowledged else "open",
            )
        )
    return tuple(out)


def _cutoff_text(code: str, settings: SignalSettings) -> str:
    instrument = load_instrument(code)
    cutoff = effective_cutoff(instrument, settings)
    rc = instrument.reliable_change
    words = {">=": "or more", ">": "or more (above)", "<=": "or less", "<": "or less (below)"}
    cut = f"{cutoff.value:g} {words[cutoff.operator]}" if cutoff is not None else "none"
    return f"{cut} / {rc.value:g} points" if rc is not None else cut


def methods_for(settings: SignalSettings, risk_window_minutes: int, min_cell: int) -> MethodsData:
    """The methods page: definitions as computed here, the thresholds in force, and the evidence."""
    replaced = {
        "Completion rate": (
            "Invitations sent in the month (for the kiosk and copied links, first opened in it), and how many of "
            "those were opened and completed, whenever that happened. By channel and in total."
        ),
        "Reliable improvement": (
            "PHQ-9 down by 6 or more, or GAD-7 down by 4 or more, from the first to the last score of an episode, "
            "with no reliable deterioration on the other measure. Out of episodes closed in the month with at "
            "least two complete scores on both PHQ-9 and GAD-7."
        ),
        "Not on track": (
            "At the checkpoint session a client is still at or above the cutoff and has improved by less than half "
            "the reliable-change value since the first score: a rule of thumb (heuristic), not a fitted model. The "
            "checkpoint rate is out of episodes whose checkpoint PHQ-9 or GAD-7 was answered in the month. The list "
            "shows outcome alerts (not on track, off track, reliable deterioration) still open at month end on "
            "episodes still open, by pseudonymous client code only."
        ),
        "Rupture": (
            "An alliance alert raised by a Partnership Check signal: a total 2 SD below the client's own mean, a "
            "reliable drop from the last session, tension reported, a component 3 points below its own mean, or a "
            "therapist rating well above the client's. An alert counts in the month of the answer that raised it. "
            "Rates are per 100 Partnership Checks answered by clients in the month."
        ),
        "Repaired / unrepaired": (
            "Repaired: the alert closed because the total returned to its pre-rupture level with no new signal (or "
            "the clinician recorded it as repaired). Share repaired is out of alliance alerts closed in the month; "
            "time to repair is the median from opening to repair over those repaired in the month. Unrepaired: "
            "still open at month end after at least the repair window of rated sessions."
        ),
        "Flag rate": (
            "Active clients with any alert raised in the month, out of all active clients. Feedback systems are "
            "usually tuned to flag about 15%; far more is noise, far fewer may miss clients."
        ),
        "Time to acknowledge": (
            "From an alert opening to a clinician acknowledging it: median and 90th percentile over alerts "
            "acknowledged in the month. Risk response times are over risk alerts raised in the month that were "
            "acknowledged; 'within the window' counts those acknowledged within the practice's risk window."
        ),
    }
    definitions = [Definition(d.term, replaced.get(d.term, d.text)) for d in DEFAULT_DEFINITIONS]
    definitions[1:1] = [
        Definition(
            "Active clients",
            "Clients with an episode of care open at any point in the month. A team's report covers the current "
            "caseloads of its clinicians. Months are calendar months in the practice's time zone.",
        ),
        Definition("Sessions", "Appointments in the month marked completed, or checked in and not cancelled."),
    ]
    definitions.extend(
        [
            Definition(
                "Tension reports",
                "Partnership Checks answered in the month with tension 'somewhat' or 'a lot' (2 or more of 3).",
            ),
            Definition(
                "Perspective gaps",
                "Sessions the clinician rated in the month where the clinician's total was 6 or more points above "
                "the client's, out of sessions the clinician rated.",
            ),
            Definition(
                "Case reviews",
                "Opened: created in the month. Completed on time or late: completed in the month, by or after the "
                "due time. Overdue: still open at month end past the due time.",
            ),
            Definition(
                "Was the feedback used?",
                f"{FIDELITY_HEADERS[0]}: client answers in the month with a next session (not cancelled) that "
                "their clinician opened (brief, chart or alert, in the audit trail) after the answer and before it "
                "began; undecided until opened or begun; none after an ended episode. "
                f"{FIDELITY_HEADERS[1]}: sessions begun in the month with answers before them, marked 'discussed "
                f"with the client'. {FIDELITY_HEADERS[2]}: alerts opened in the month with an action by a person "
                "(a system escalation is none); median hours to that first action. "
                f"{FIDELITY_HEADERS[3]}: risk alerts opened in the month acknowledged within the risk window.",
            ),
        ]
    )
    in_force = (
        SettingInForce("PHQ-9 caseness / reliable change", _cutoff_text(PHQ9, settings), "NHS Talking Therapies"),
        SettingInForce("GAD-7 caseness / reliable change", _cutoff_text(GAD7, settings), "NHS Talking Therapies"),
        SettingInForce(
            "Not-on-track checkpoint",
            f"session {settings.not_on_track_checkpoint}, improved < "
            f"{settings.not_on_track_fraction:g} x the reliable change",
            "design heuristic",
        ),
        SettingInForce(
            "Partnership Check deviation",
            f"{settings.k:g} SD below own mean, SD floor {settings.sd_floor:g}",
            "Stiles 2004; Gumz 2012",
        ),
        SettingInForce("Partnership Check reliable drop", f"{settings.alliance_rc:g} points", "design default"),
        SettingInForce(
            "Partnership Check low score",
            f"below {settings.low_cutoff:g} of 40 (prompt only, no alert)",
            "session-rating use",
        ),
        SettingInForce(
            "Component drop / perspective gap",
            f"{settings.component_threshold:g} points / {settings.perspective_gap:g} points",
            "design",
        ),
        SettingInForce(
            "Repair window / silence window",
            f"{settings.repair_window} sessions / {settings.silence_days} days",
            "design",
        ),
        SettingInForce("Risk response window", f"{risk_window_minutes} minutes", "practice setting"),
        SettingInForce("Smallest cell shown", f"{min_cell} cases", "report setting"),
    )
    return MethodsData(definitions=tuple(definitions), settings=in_force, citations=EVIDENCE)


def fidelity_figures(figures: Fidelity, names: dict[int, str], risk_window_minutes: int) -> FidelityFigures:
    """The report's "was the feedback used?" data from the fidelity queries."""

    def line(row: FidelityRow, name: str) -> FidelityLine:
        return FidelityLine(
            name=name,
            administrations=row.administrations,
            viewed=row.viewed_before_next,
            briefs=row.briefs,
            discussed=row.briefs_discussed,
            alerts_opened=row.alerts_opened,
            alerts_acted_on=row.alerts_acted_on,
            risk_alerts=row.risk_alerts,
            risk_in_window=row.risk_in_window,
        )

    kinds = []
    for kind, label in (("risk", "Risk"), ("alliance", "Alliance"), ("outcome", "Outcome")):
        use = figures.total.alerts.get(kind)
        kinds.append(
            FidelityKind(
                label,
                use.opened if use else 0,
                use.acted_on if use else 0,
                figures.median_hours.get(kind),
            )
        )
    return FidelityFigures(
        total=line(figures.total, "All"),
        clinicians=tuple(line(row, names.get(row.clinician_id, f"Staff {row.clinician_id}")) for row in figures.rows),
        kinds=tuple(kinds),
        risk_window_minutes=risk_window_minutes,
    )


def assemble_monthly(
    aggregates: MonthlyAggregates,
    *,
    practice_name: str,
    generated_on: date,
    tz: ZoneInfo,
    signal_settings: SignalSettings,
    risk_window_minutes: int,
    min_cell: int = MIN_CELL,
    fidelity_data: FidelityFigures | None = None,
) -> MonthlyReportData:
    """Build the report's plain data from the aggregates (raises ValueError if they disagree with each other)."""
    totals = _totals(aggregates)
    period = aggregates.period
    ack = {a.period: a for a in aggregates.acknowledgements}
    trend = tuple(
        _month_figures(m.period, totals[(m.period, None)], ack[m.period].median_hours if m.period in ack else None)
        for m in aggregates.months
    )
    now = totals[(period, None)]
    d = aggregates.detail

    channels: dict[str, list[int]] = {}
    for e in sorted(aggregates.engagement, key=lambda r: (r.channel, r.clinician_id)):
        if e.period == period:
            entry = channels.setdefault(e.channel, [0, 0, 0])
            entry[0] += e.sent
            entry[1] += e.opened
            entry[2] += e.completed
    engagement = tuple(
        ChannelEngagement(CHANNEL_LABELS.get(ch, ch.title()), sent, opened, completed)
        for ch, (sent, opened, completed) in sorted(channels.items())
    )

    outcomes = OutcomeFigures(
        episodes_closed=now.closed,
        episodes_assessed=now.assessed,
        reliable_improvement=now.reliable_improvement,
        reliable_deterioration=now.reliable_deterioration,
        recovery_eligible=now.recovery_eligible,
        recovered=now.recovered,
        reliable_recovery=now.reliable_recovery,
        checkpoint_episodes=d.checkpoint_episodes,
        checkpoint_flagged=d.checkpoint_flagged,
    )
    drops = dict(d.component_drops)
    component_drops = tuple(
        ComponentCount(COMPONENT_LABELS.get(name, name.replace("_", " ").capitalize()), n)
        for name, n in sorted(drops.items(), key=lambda kv: (kv[0] not in COMPONENT_LABELS, kv[0]))
    )
    alliance = AllianceFigures(
        partnership_sessions=now.partnership_sessions,
        partnership_mean=now.partnership_mean,
        clients_rated=d.clients_rated,
        clients_with_rupture=d.clients_with_rupture,
        ruptures=now.raised.get("alliance", 0),
        alliance_alerts_closed=now.resolved.get("alliance", 0),
        repaired=now.repaired.get("alliance", 0),
        unrepaired_open=d.unrepaired_open,
        repair_days_median=d.repair_days_median,
        tension_reports=d.tension_reports,
        therapist_rated_sessions=d.therapist_rated_sessions,
        perspective_gaps=d.perspective_gaps,
        component_drops=component_drops,
    )
    acknowledged = ack.get(period)
    acknowledged_by_kind = dict(acknowledged.by_kind) if acknowledged else {}
    workflow = WorkflowFigures(
        alerts=tuple(
            AlertKindFigures(
                label, now.raised.get(kind, 0), acknowledged_by_kind.get(kind, 0), now.resolved.get(kind, 0)
            )
            for kind, label in KIND_LABELS
        ),
        active_clients=now.caseload,
        clients_flagged=now.clients_flagged,
        acknowledged=acknowledged.total if acknowledged else 0,
        ack_median_hours=acknowledged.median_hours if acknowledged else None,
        ack_p90_hours=acknowledged.p90_hours if acknowledged else None,
        escalations=d.escalations,
        risk_alerts=d.risk_alerts,
        risk_ack_median_minutes=d.risk_ack_median_minutes,
        risk_ack_p90_minutes=d.risk_ack_p90_minutes,
        risk_within_window=d.risk_within_window,
        risk_window_minutes=risk_window_minutes,
        reviews_opened=d.reviews_opened,
        reviews_completed_on_time=d.reviews_completed_on_time,
        reviews_completed_late=d.reviews_completed_late,
        reviews_overdue=d.reviews_overdue,
    )
    not_on_track_by_clinician: dict[int, int] = {}
    for row in _shown_not_on_track(aggregates.not_on_track):
        if row.clinician_id is not None:
            not_on_track_by_clinician[row.clinician_id] = not_on_track_by_clinician.get(row.clinician_id, 0) + 1
    clinicians = []
    for (p, clinician_id), t in totals.items():
        if p != period or clinician_id is None:
            continue
        clinicians.append(
            ClinicianFigures(
                name=aggregates.clinician_names.get(clinician_id, f"Staff {clinician_id}"),
                caseload=t.caseload,
                invitations_sent=t.sent,
                invitations_completed=t.completed,
                episodes_assessed=t.assessed,
                reliable_improvement=t.reliable_improvement,
                reliable_deterioration=t.reliable_deterioration,
                recovery_eligible=t.recovery_eligible,
                recovered=t.recovered,
                partnership_sessions=t.partnership_sessions,
                ruptures=t.raised.get("alliance", 0),
                alliance_alerts_closed=t.resolved.get("alliance", 0),
                repaired=t.repaired.get("alliance", 0),
                clients_flagged=t.clients_flagged,
                not_on_track=not_on_track_by_clinician.get(clinician_id, 0),
                team=aggregates.clinician_teams.get(clinician_id, ""),
            )
        )
    clinicians.sort(key=lambda c: (c.name.casefold(), c.name))
    return MonthlyReportData(
        practice_name=practice_name,
        scope_label=aggregates.scope_label,
        period=period,
        generated_on=generated_on,
        engagement=engagement,
        outcomes=outcomes,
        not_on_track=_not_on_track(aggregates.not_on_track, tz),
        alliance=alliance,
        workflow=workflow,
        clinicians=tuple(clinicians),
        trend=trend,
        methods=methods_for(signal_settings, risk_window_minutes, min_cell),
        min_cell=min_cell,
        # The practice report counts clients per team and clinician; their codes are in the narrower reports.
        list_clients=aggregates.scope.kind != "practice",
        client_lists_in=aggregates.team_names,
        fidelity=fidelity_data,
    )


# ---------------------------------------------------------------------------------------------------------------
# From a session to a PDF


def report_months(session: Session, period: str, tz: ZoneInfo) -> tuple[Month, ...]:
    """The trend window: up to twelve months ending with period, from the practice's first month with an episode."""
    months = months_ending(period, tz, TREND_MONTHS)
    first = first_activity_day(session)
    if first is None:
        return months[-1:]
    kept = tuple(m for m in months if m.last_day >= first)
    return kept or months[-1:]


def monthly_report_data(
    session: Session,
    settings: Settings,
    scope: ReportScope,
    period: str,
    *,
    now: datetime | None = None,
) -> tuple[MonthlyReportData, MonthlyAggregates]:
    """Query and assemble one monthly report (raises ScopeNotFoundError, PeriodError or ValueError)."""
    tz = settings.tz
    signal_settings = report_signal_settings(session, settings)
    months = report_months(session, period, tz)
    aggregates = monthly_aggregates(
        session, scope, months, settings=signal_settings, risk_window_minutes=signal_settings.risk_window_minutes
    )
    started = time.perf_counter()
    used = fidelity(
        session,
        scope,
        month_of(period, tz),
        risk_window_minutes=signal_settings.risk_window_minutes,
        now=now or utcnow(),
    )
    aggregates.timings["fidelity"] = time.perf_counter() - started
    names = dict(aggregates.clinician_names)
    missing = [row.clinician_id for row in used.rows if row.clinician_id not in names]
    if missing:
        names.update(clinician_names(session, missing))
    data = assemble_monthly(
        aggregates,
        practice_name=settings.practice_name,
        generated_on=(now or utcnow()).astimezone(tz).date(),
        tz=tz,
        signal_settings=signal_settings,
        risk_window_minutes=signal_settings.risk_window_minutes,
        fidelity_data=fidelity_figures(used, names, signal_settings.risk_window_minutes),
    )
    return data, aggregates


@dataclass(frozen=True)
class RenderedReport:
    """A rendered monthly report, with what it took."""

    pdf: bytes
    html: str
    data: MonthlyReportData
    timings: dict[str, float]


def render_monthly_report(
    session: Session,
    settings: Settings,
    scope: ReportScope,
    period: str,
    *,
    now: datetime | None = None,
) -> RenderedReport:
    """Query, assemble and render one monthly report to PDF (RefusedResourceError if rendering fetched anything)."""
    started = time.perf_counter()
    data, aggregates = monthly_report_data(session, settings, scope, period, now=now)
    assembled = time.perf_counter()
    html = render_monthly_html(data)
    templated = time.perf_counter()
    pdf = render_pdf(html)
    rendered = time.perf_counter()
    timings = {
        **{f"query_{k}": v for k, v in aggregates.timings.items()},
        "queries_and_assembly": assembled - started,
        "templates": templated - assembled,
        "pdf": rendered - templated,
    }
    return RenderedReport(pdf=pdf, html=html, data=data, timings=timings)
