"""Outcome rules per session (CLINICAL.md section 4) and the NHS Talking Therapies episode outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.measures.instrument import Cutoff, Instrument, compare
from services.measures.loader import load_instrument
from services.measures.scoring import check_answer
from services.signals.exact import ratio, units
from services.signals.settings import DEFAULT_SETTINGS, SignalSettings
from services.signals.trajectory import TrajectoryModel, off_track_boundary
from services.signals.types import NOT_ON_TRACK, OFF_TRACK, OUTCOME_KINDS, RELIABLE_DETERIORATION, RISK, Signal

_KIND_ORDER = {kind: position for position, kind in enumerate(OUTCOME_KINDS)}

RiskAnswers = Mapping[str, float | int | None]


def effective_cutoff(instrument: Instrument, settings: SignalSettings | None = None) -> Cutoff | None:
    """Return the instrument's cutoff, with the practice's override of its value if one is set."""
    cfg = settings or DEFAULT_SETTINGS
    if instrument.cutoff is None:
        return None
    override = cfg.cutoff_overrides.get(instrument.code)
    if override is None:
        return instrument.cutoff
    return Cutoff(value=float(override), operator=instrument.cutoff.operator)


def outcome_signals(
    scores: Sequence[float | int | None],
    *,
    instrument: Instrument | str,
    settings: SignalSettings | None = None,
    risk_answers: Sequence[RiskAnswers | None] | None = None,
    model: TrajectoryModel | None = None,
) -> list[list[Signal]]:
    """Return the outcome signals of each session; risk_answers holds each session's answers by item id."""
    cfg = settings or DEFAULT_SETTINGS
    measure = load_instrument(instrument) if isinstance(instrument, str) else instrument
    if risk_answers is not None and len(risk_answers) != len(scores):
        raise ValueError(f"risk_answers has {len(risk_answers)} sessions but scores has {len(scores)}")
    cutoff = effective_cutoff(measure, cfg)
    rc = measure.reliable_change.value if measure.reliable_change is not None else None
    rc_units = None if rc is None else units(rc)
    # NOT_ON_TRACK: improved by less than this, in units (half the reliable-change value by default), exactly.
    needed = None if rc_units is None else ratio(cfg.not_on_track_fraction) * rc_units
    checked = False
    first_session: int | None = None
    first: float = 0.0
    out: list[list[Signal]] = []
    for index, raw in enumerate(scores):
        session = index + 1
        score = _score(raw, index, measure)
        found: dict[str, dict[str, Any]] = {}
        if risk_answers is not None and risk_answers[index] is not None:
            positive = _risk(measure, risk_answers[index] or {})
            if positive:
                item_id = max(positive, key=lambda key: positive[key])
                found[RISK] = {
                    "item": item_id,
                    "answer": positive[item_id],
                    "items": positive,
                    "escalate_after_minutes": cfg.risk_window_minutes,
                }
        if score is not None and first_session is None:
            first_session, first = session, score
        elif score is not None and first_session is not None:
            worse_by = measure.worsening(first, score)
            worse_units = measure.worsening(units(first), units(score))
            if rc_units is not None and worse_units >= rc_units:
                found[RELIABLE_DETERIORATION] = {
                    "first": first,
                    "score": score,
                    "worse_by": worse_by,
                    "rc": rc,
                    "direction": measure.direction,
                }
            t = session - first_session
            if model is not None:
                boundary = off_track_boundary(model, first, t, direction=measure.direction, settings=cfg)
                beyond = score > boundary if measure.direction == "higher_worse" else score < boundary
                if beyond:
                    found[OFF_TRACK] = {
                        "first": first,
                        "score": score,
                        "t": t,
                        "expected": model.expected(first, t),
                        "boundary": boundary,
                        "sigma_pred": model.sigma_pred,
                        "z": cfg.off_track_z,
                        "direction": measure.direction,
                        "fitted_on": model.fitted_on,
                        "n_episodes": model.n_episodes,
                    }
            elif (
                not checked
                and t + 1 >= cfg.not_on_track_checkpoint
                and cutoff is not None
                and needed is not None
                and rc is not None
            ):
                # The checkpoint counts administrations from the first score (that one is 1); an incomplete one
                # there defers the check to the next complete score, and it runs once.
                checked = True
                if compare(units(score), cutoff.operator, units(cutoff.value)) and -worse_units < needed:
                    found[NOT_ON_TRACK] = {
                        "first": first,
                        "score": score,
                        "improved_by": -worse_by,
                        "needed": cfg.not_on_track_fraction * rc,
                        "cutoff": cutoff.value,
                        "operator": cutoff.operator,
                        "checkpoint": cfg.not_on_track_checkpoint,
                        "administration": t + 1,
                        "tier": "rational",
                        "heuristic": True,
                    }
        out.append(
            [
                Signal(kind=kind, session=session, evidence=evidence)
                for kind, evidence in sorted(found.items(), key=lambda pair: _KIND_ORDER[pair[0]])
            ]
        )
    return out


@dataclass(frozen=True, slots=True)
class EpisodeOutcome:
    """NHS Talking Therapies classification of an episode from first and last PHQ-9 and GAD-7."""

    caseness_start: bool
    caseness_end: bool
    reliable_improvement: bool
    reliable_deterioration: bool
    recovery: bool
    reliable_recovery: bool
    phq9_change: float
    gad7_change: float


def episode_outcome(
    phq9_first: float,
    phq9_last: float,
    gad7_first: float,
    gad7_last: float,
    *,
    settings: SignalSettings | None = None,
) -> EpisodeOutcome:
    """Classify an episode: caseness, reliable improvement or deterioration, recovery, reliable recovery."""
    phq9 = load_instrument("PHQ-9")
    gad7 = load_instrument("GAD-7")
    for measure, first, last in ((phq9, phq9_first, phq9_last), (gad7, gad7_first, gad7_last)):
        for label, value in (("first", first), ("last", last)):
            if not measure.range_min <= value <= measure.range_max:
                raise ValueError(f"{measure.code} {label} score {value!r} lies outside its range")
    phq9_cut = effective_cutoff(phq9, settings)
    gad7_cut = effective_cutoff(gad7, settings)
    phq9_rc = phq9.reliable_change
    gad7_rc = gad7.reliable_change
    if phq9_cut is None or gad7_cut is None or phq9_rc is None or gad7_rc is None:
        raise ValueError("the PHQ-9 and GAD-7 definitions must carry a cutoff and a reliable-change value")
    phq9_change = phq9_last - phq9_first
    gad7_change = gad7_last - gad7_first
    improved = (-phq9_change >= phq9_rc.value, -gad7_change >= gad7_rc.value)
    deteriorated = (phq9_change >= phq9_rc.value, gad7_change >= gad7_rc.value)
    reliable_improvement = any(improved) and not any(deteriorated)
    reliable_deterioration = any(deteriorated) and not any(improved)
    caseness_start = phq9_cut.flags(phq9_first) or gad7_cut.flags(gad7_first)
    caseness_end = phq9_cut.flags(phq9_last) or gad7_cut.flags(gad7_last)
    recovery = caseness_start and not caseness_end
    return EpisodeOutcome(
        caseness_start=caseness_start,
        caseness_end=caseness_end,
        reliable_improvement=reliable_improvement,
        reliable_deterioration=reliable_deterioration,
        recovery=recovery,
        reliable_recovery=recovery and reliable_improvement,
        phq9_change=float(phq9_change),
        gad7_change=float(gad7_change),
    )


def _score(value: float | int | None, index: int, measure: Instrument) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"scores[{index}] must be a number or None, got {value!r}")
    if not measure.range_min <= value <= measure.range_max:
        raise ValueError(
            f"scores[{index}] = {value!r} lies outside the {measure.code} range "
            f"{measure.range_min:g}-{measure.range_max:g}"
        )
    return float(value)


def _risk(measure: Instrument, answers: RiskAnswers) -> dict[str, float]:
    positive: dict[str, float] = {}
    for item in measure.risk_items:
        answer = check_answer(measure.code, item, answers.get(item.id))
        if isinstance(answer, float) and answer > 0:
            positive[item.id] = answer
    return positive
