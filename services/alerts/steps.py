"""The per-kind steps of an evaluation: what a session's signals do to the episode's alliance, outcome and risk
alerts. The alliance step follows the state machine of `services.signals.evaluate_alliance`, driven by the stored
alert rather than a replay, so that a clinician's resolution counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from services.alerts.models import SignalRecord
from services.alerts.rows import baseline_of, largest_drop_of, reaches_baseline, score_of
from services.alerts.run import (
    ALLIANCE,
    OUTCOME,
    RISK_ALERT,
    SEVERITY_RANK,
    EvaluationRun,
    alert_series,
    append_evidence,
    current_alert,
    forget_alert,
    has_kind,
    notify_alert,
    open_alert,
    series_of,
    store_signals,
    tag_evidence,
    write_pending_signals,
)
from services.measures import Instrument, all_instruments
from services.signals import (
    ALLIANCE_KINDS,
    NOT_ON_TRACK,
    OFF_TRACK,
    OPENING_KINDS,
    PERSPECTIVE_GAP,
    RELIABLE_DETERIORATION,
    REPAIRED,
    RISK,
    UNREPAIRED,
)
from services.signals.exact import units
from services.surveys.models import Administration

OUTCOME_OPENING = (RELIABLE_DETERIORATION, OFF_TRACK, NOT_ON_TRACK)


def alliance_step(
    run: EvaluationRun,
    instrument: Instrument,
    prefix: Sequence[Administration],
    index: int,
    found: dict[str, dict[str, Any]],
    *,
    late: bool,
) -> None:
    row = prefix[index]
    session_no = index + 1
    if late:
        for evidence in found.values():
            evidence["late"] = True
        return
    opening = [kind for kind in ALLIANCE_KINDS if kind in found and kind in OPENING_KINDS]
    extras = largest_drop_of(instrument, prefix, index)
    alert = current_alert(run, row.episode_id, ALLIANCE)
    if alert is not None and alert_series(alert) in (None, instrument.code):
        since = session_no - (alert.opened_session or session_no)
        tag_evidence(found, alert, "added")
        total = score_of(row)
        cfg = run.settings.for_instrument(instrument)
        if (
            total is not None
            and alert.baseline is not None
            and not opening
            and reaches_baseline(prefix, alert, total, cfg)
        ):
            found[REPAIRED] = {
                "score": total,
                "baseline": alert.baseline,
                "opened_session": alert.opened_session,
                "alert_id": alert.id,
            }
            alert.status = "resolved"
            alert.resolution_reason = "repaired"
            alert.repaired_at = alert.resolved_at = run.at(row)
            forget_alert(run, alert)
            run.result.alerts_repaired.append(alert.id)
        elif since == run.settings.repair_window and not has_kind(alert, UNREPAIRED):
            found[UNREPAIRED] = {
                "score": total,
                "baseline": alert.baseline,
                "opened_session": alert.opened_session,
                "sessions_open": since,
                "alert_id": alert.id,
            }
        alert.sessions_open = since
        if found:
            append_evidence(run, alert, row, instrument.code, instrument.code, session_no, found, extras)
    elif alert is not None:
        # Open on another alliance instrument's series: that series runs its state machine; this adds evidence.
        if opening:
            tag_evidence(found, alert, "added")
            append_evidence(run, alert, row, instrument.code, instrument.code, session_no, found, extras)
    elif opening:
        alert = open_alert(
            run,
            kind=ALLIANCE,
            severity="amber",
            baseline=baseline_of(prefix, index),
            opened_session=session_no,
            administration=row,
        )
        tag_evidence(
            found, alert, "opened" if alert.opened_by_administration_id == row.id else "added", opening=opening
        )
        append_evidence(run, alert, row, instrument.code, instrument.code, session_no, found, extras)
        notify_alert(run, alert, dedupe_key=f"alert:{alert.id}:opened")


def outcome_step(
    run: EvaluationRun, instrument: Instrument, row: Administration, session_no: int, found: dict[str, dict[str, Any]]
) -> None:
    groups = (
        (RISK_ALERT, [RISK] if RISK in found else []),
        (OUTCOME, [kind for kind in OUTCOME_OPENING if kind in found]),
    )
    for alert_kind, kinds in groups:
        if not kinds:
            continue
        subset = {kind: found[kind] for kind in kinds}
        severity = "risk" if alert_kind == RISK_ALERT else ("red" if RELIABLE_DETERIORATION in kinds else "amber")
        alert = current_alert(run, row.episode_id, alert_kind)
        if alert is None:
            alert = open_alert(
                run,
                kind=alert_kind,
                severity=severity,
                baseline=None,
                opened_session=session_no,
                administration=row,
            )
            opened_here = alert.opened_by_administration_id == row.id
            tag_evidence(subset, alert, "opened" if opened_here else "added")
            append_evidence(run, alert, row, instrument.code, instrument.code, session_no, subset, {})
            notify_alert(run, alert, dedupe_key=f"alert:{alert.id}:opened")
        else:
            tag_evidence(subset, alert, "added")
            if SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(alert.severity, 0):
                alert.severity = severity
            append_evidence(run, alert, row, instrument.code, instrument.code, session_no, subset, {})
            if alert_kind == RISK_ALERT:
                # A new positive risk answer is news even while the alert is open: never batched, never dropped.
                notify_alert(run, alert, dedupe_key=f"alert:{alert.id}:risk:{row.id}")


def evaluate_therapist_view(run: EvaluationRun, row: Administration, instrument: Instrument) -> None:
    """The clinician's own rating arrived after the client's: check the perspective gap for that session now."""
    therapist_total = score_of(row)
    if row.appointment_id is None or therapist_total is None or not instrument.components:
        return
    client_codes = [
        candidate.code
        for candidate in all_instruments()
        if candidate.kind == "alliance" and candidate.components == instrument.components
    ]
    client = run.session.scalar(
        select(Administration)
        .where(
            Administration.episode_id == row.episode_id,
            Administration.appointment_id == row.appointment_id,
            Administration.instrument_code.in_(client_codes),
        )
        .order_by(Administration.completed_at.desc(), Administration.id.desc())
        .limit(1)
    )
    # Not evaluated yet: the client's own evaluation reads this rating as the session's therapist total.
    if client is None or client.evaluated_at is None or score_of(client) is None:
        return
    write_pending_signals(run)
    already = run.session.scalar(
        select(SignalRecord.id).where(
            SignalRecord.kind == PERSPECTIVE_GAP, SignalRecord.administration_id.in_((client.id, row.id))
        )
    )
    if already is not None:
        return
    client_total = score_of(client)
    assert client_total is not None
    gap = therapist_total - client_total
    if units(therapist_total) - units(client_total) < units(run.settings.perspective_gap):
        return
    series = series_of(run, client.episode_id, client.instrument_code)
    index = next(i for i, item in enumerate(series) if item.id == client.id)
    session_no = index + 1
    found: dict[str, dict[str, Any]] = {
        PERSPECTIVE_GAP: {
            "therapist_total": therapist_total,
            "client_total": client_total,
            "gap": gap,
            "threshold": run.settings.perspective_gap,
            "client_administration_id": client.id,
            "settings_version": run.settings.version,
        }
    }
    if any(item.evaluated_at is not None for item in series[index + 1 :]):
        found[PERSPECTIVE_GAP]["late"] = True
    else:
        alert = current_alert(run, row.episode_id, ALLIANCE)
        if alert is not None:
            tag_evidence(found, alert, "added")
            append_evidence(run, alert, row, instrument.code, client.instrument_code, session_no, found, {})
        else:
            alert = open_alert(
                run,
                kind=ALLIANCE,
                severity="amber",
                baseline=baseline_of(series, index),
                opened_session=session_no,
                administration=row,
            )
            tag_evidence(found, alert, "opened" if alert.opened_by_administration_id == row.id else "added")
            append_evidence(run, alert, row, instrument.code, client.instrument_code, session_no, found, {})
            notify_alert(run, alert, dedupe_key=f"alert:{alert.id}:opened")
    store_signals(run, row, session_no, found)
