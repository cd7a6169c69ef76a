"""The report's figures against an independent computation from the fixture practice's own values."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from reports.assemble import monthly_report_data
from reports.monthly import MonthlyReportData
from services.config import Settings
from services.reporting.periods import ReportScope
from tests.unit.reporting.practice import NOW, PERIOD, Expected, Practice, expected, trend_periods


def scopes(p: Practice) -> list[str]:
    return ["practice", f"team:{p.teams['North'].id}", f"team:{p.teams['South'].id}", f"clinician:{p.clinicians[2].id}"]


def report(session: Session, settings: Settings, scope: str, period: str = PERIOD) -> MonthlyReportData:
    data, _ = monthly_report_data(session, settings, ReportScope.parse(scope), period, now=NOW)
    return data


def check(data: MonthlyReportData, exp: Expected, p: Practice) -> None:
    w, o, a = data.workflow, data.outcomes, data.alliance
    assert w.active_clients == exp.active_clients
    assert w.clients_flagged == exp.clients_flagged
    assert data.trend[-1].sessions == exp.sessions
    labels = {"email": "Email", "sms": "SMS", "kiosk": "Kiosk", "link": "Link"}
    assert {ch.channel: [ch.sent, ch.opened, ch.completed] for ch in data.engagement} == {
        labels[k]: v for k, v in exp.channels.items()
    }
    assert (o.episodes_closed, o.episodes_assessed) == (exp.closed, exp.assessed)
    assert (o.reliable_improvement, o.reliable_deterioration) == (exp.reliable_improvement, exp.reliable_deterioration)
    assert (o.recovery_eligible, o.recovered, o.reliable_recovery) == (
        exp.recovery_eligible,
        exp.recovered,
        exp.reliable_recovery,
    )
    assert (o.checkpoint_episodes, o.checkpoint_flagged) == (exp.checkpoint_episodes, exp.checkpoint_flagged)
    assert {c.client_code for c in data.not_on_track} == exp.not_on_track_codes
    assert a.partnership_sessions == exp.partnership_sessions
    assert a.partnership_mean == pytest.approx(exp.partnership_mean)
    assert (a.clients_rated, a.clients_with_rupture) == (exp.clients_rated, exp.clients_with_rupture)
    assert a.tension_reports == exp.tension_reports
    assert (a.therapist_rated_sessions, a.perspective_gaps) == (exp.therapist_rated, exp.perspective_gaps)
    assert a.ruptures == exp.raised.get("alliance", 0)
    assert a.alliance_alerts_closed == exp.resolved.get("alliance", 0)
    assert a.repaired == exp.repaired
    assert a.unrepaired_open == exp.unrepaired_open
    assert a.repair_days_median == pytest.approx(exp.repair_days_median)
    labels_of = {"mutual_goals": "Mutual goals", "rapport": "Rapport"}
    assert {c.component: c.drops for c in a.component_drops} == {
        labels_of.get(k, k): v for k, v in exp.component_drops.items()
    }
    assert w.risk_ack_median_minutes == pytest.approx(exp.risk_median_minutes)
    assert w.risk_ack_p90_minutes == pytest.approx(exp.risk_p90_minutes)
    by_kind = {k.kind.lower(): (k.opened, k.resolved) for k in w.alerts}
    for kind in ("alliance", "outcome", "risk"):
        assert by_kind[kind] == (exp.raised.get(kind, 0), exp.resolved.get(kind, 0)), kind
    assert w.acknowledged == exp.acknowledged
    assert w.ack_median_hours == pytest.approx(exp.ack_median)
    assert w.ack_p90_hours == pytest.approx(exp.ack_p90)
    assert w.escalations == exp.escalations
    assert (w.risk_alerts, w.risk_within_window) == (exp.risk_alerts, exp.risk_within)
    assert (w.reviews_opened, w.reviews_completed_on_time, w.reviews_completed_late, w.reviews_overdue) == (
        exp.reviews_opened,
        exp.reviews_on_time,
        exp.reviews_late,
        exp.reviews_overdue,
    )
    names = {u.id: u.name for u in p.clinicians}
    rows = {c.name: c for c in data.clinicians}
    assert set(rows) == {names[c] for c in exp.per_clinician}
    for clinician_id, figures in exp.per_clinician.items():
        row = rows[names[clinician_id]]
        assert row.caseload == figures.get("caseload", 0)
        assert row.clients_flagged == figures.get("flagged", 0)
        assert (row.invitations_sent, row.invitations_completed) == (
            figures.get("sent", 0),
            figures.get("completed", 0),
        )
        assert row.episodes_assessed == figures.get("assessed", 0)
        assert row.reliable_improvement == figures.get("reliable_improvement", 0)
        assert row.recovered == figures.get("recovered", 0)
        assert row.partnership_sessions == figures.get("partnership", 0)
        assert (row.ruptures, row.alliance_alerts_closed, row.repaired) == (
            figures.get("ruptures", 0),
            figures.get("closed", 0),
            figures.get("repaired", 0),
        )


def test_the_fixture_practice_exercises_every_figure(
    session: Session, practice: Practice, report_settings: Settings
) -> None:
    exp = expected(practice, PERIOD)
    assert exp.assessed >= 5
    assert exp.recovery_eligible >= 5
    assert exp.reliable_improvement
    assert exp.recovered
    assert exp.reliable_deterioration >= 0
    assert exp.raised.get("alliance")
    assert exp.raised.get("outcome")
    assert exp.raised.get("risk")
    assert exp.resolved.get("alliance")
    assert exp.repaired
    assert exp.acknowledged >= 5
    assert exp.reviews_opened
    assert exp.checkpoint_episodes
    assert exp.checkpoint_flagged
    assert exp.not_on_track_codes
    assert exp.tension_reports
    assert exp.perspective_gaps
    assert exp.unrepaired_open
    assert exp.repair_days_median
    assert exp.component_drops
    assert len(exp.channels) >= 3
    assert any(v.get("caseload", 0) < 5 for v in exp.per_clinician.values())  # one small caseload: suppression


@pytest.mark.parametrize("which", [0, 1, 2, 3])
def test_report_month_figures_match_the_independent_computation(
    session: Session, practice: Practice, report_settings: Settings, which: int
) -> None:
    scope = scopes(practice)[which]
    check(report(session, report_settings, scope), expected(practice, PERIOD, scope), practice)


def test_every_trend_month_matches_the_independent_computation(
    session: Session, practice: Practice, report_settings: Settings
) -> None:
    data = report(session, report_settings, "practice")
    assert [m.period for m in data.trend] == trend_periods(practice, PERIOD)
    for month in data.trend:
        exp = expected(practice, month.period)
        assert month.active_clients == exp.active_clients, month.period
        assert month.sessions == exp.sessions, month.period
        assert month.invitations_sent == sum(v[0] for v in exp.channels.values()), month.period
        assert month.invitations_completed == sum(v[2] for v in exp.channels.values()), month.period
        assert (month.episodes_assessed, month.reliable_improvement, month.recovered) == (
            exp.assessed,
            exp.reliable_improvement,
            exp.recovered,
        ), month.period
        assert month.partnership_sessions == exp.partnership_sessions, month.period
        assert month.ruptures == exp.raised.get("alliance", 0), month.period
        assert (month.alliance_alerts_closed, month.repaired) == (exp.resolved.get("alliance", 0), exp.repaired)
        assert month.clients_flagged == exp.clients_flagged, month.period
        assert month.ack_median_hours == pytest.approx(exp.ack_median), month.period


def test_each_earlier_month_equals_its_own_report(
    session: Session, practice: Practice, report_settings: Settings
) -> None:
    october = report(session, report_settings, "practice")
    september = report(session, report_settings, "practice", "2026-09")
    assert october.trend[-2] == september.trend[-1]
    check(september, expected(practice, "2026-09"), practice)


def test_month_boundaries_follow_the_practice_time_zone(
    session: Session, practice: Practice, report_settings: Settings
) -> None:
    october = report(session, report_settings, "practice")
    # Of the four link invitations at the edges of October, two are October's (00:30 BST on the 1st, 23:30 GMT
    # on the 31st); the one at 23:30 BST on 30 September and the one at 00:30 GMT on 1 November are not.
    assert {ch.channel: ch.sent for ch in october.engagement}["Link"] == 2
    september = report(session, report_settings, "practice", "2026-09")
    assert {ch.channel: ch.sent for ch in september.engagement}["Link"] == 1
    # The alert opened at 00:01 on 1 October for an answer given at 23:59 on 30 September counts in September.
    late = next(a for a in practice.alerts if a.opened_at.isoformat().startswith("2026-09-30T23:01"))
    assert late.kind == "alliance"
    assert expected(practice, "2026-09").raised["alliance"] == september.alliance.ruptures


def test_a_scope_that_does_not_exist_is_refused(
    session: Session, practice: Practice, report_settings: Settings
) -> None:
    from services.reporting.queries import ScopeNotFoundError

    with pytest.raises(ScopeNotFoundError):
        report(session, report_settings, "team:999999")
    with pytest.raises(ScopeNotFoundError):
        report(session, report_settings, "clinician:999999")


def test_an_empty_practice_gives_a_valid_empty_report(session: Session, report_settings: Settings) -> None:
    data = report(session, report_settings, "practice")
    assert len(data.trend) == 1
    assert data.workflow.active_clients == 0
    assert data.clinicians == ()
