"""Properties the alliance rules must hold for any series."""

from hypothesis import given
from hypothesis import strategies as st

from services.signals import (
    LOW_ALLIANCE,
    RUPTURE_DEV,
    RUPTURE_DROP,
    SignalSettings,
    alliance_signals,
    evaluate_alliance,
    outcome_signals,
)

from .strategies import Series, series, settings


def _run(case: Series, cfg: SignalSettings, shift: float = 0.0):
    def moved(values):
        return None if values is None else [None if v is None else v + shift for v in values]

    return evaluate_alliance(
        moved(case.totals),  # type: ignore[arg-type]
        items=case.items,
        tension=case.tension,
        therapist_totals=moved(case.therapist),
        settings=cfg,
    )


@given(
    value=st.one_of(st.integers(0, 40).map(float), st.floats(-1e6, 1e6, allow_nan=False)),
    length=st.integers(1, 25),
    cfg=settings,
)
def test_a_constant_series_never_yields_a_deviation_or_a_drop(value, length, cfg):
    per_session = alliance_signals([value] * length, settings=cfg)
    assert not any(s.kind in (RUPTURE_DEV, RUPTURE_DROP) for session in per_session for s in session)


@given(case=series(), shift=st.integers(-60, 60), cfg=settings)
def test_adding_a_constant_to_every_score_changes_no_deviation_based_signal(case, shift, cfg):
    before = _run(case, cfg)
    after = _run(case, cfg, float(shift))

    def shape(result):
        return [[s.kind for s in session if s.kind != LOW_ALLIANCE] for session in result.signals]

    assert shape(after) == shape(before)
    assert [(a.opened_session, a.repaired_session, a.unrepaired_session) for a in after.alerts] == [
        (a.opened_session, a.repaired_session, a.unrepaired_session) for a in before.alerts
    ]


@given(case=series(quarters=True), shift=st.sampled_from([-7.75, -0.25, 0.5, 3.25, 12.0]), cfg=settings)
def test_shift_invariance_holds_for_fractional_scores_too(case, shift, cfg):
    def shape(result):
        return [[s.kind for s in session if s.kind != LOW_ALLIANCE] for session in result.signals]

    assert shape(_run(case, cfg, shift)) == shape(_run(case, cfg))


@given(case=series(max_size=12), cfg=settings)
def test_signals_for_a_session_depend_only_on_the_sessions_up_to_it(case, cfg):
    full = _run(case, cfg).signals
    for t in range(1, len(case.totals) + 1):

        def cut(values, t=t):
            return None if values is None else values[:t]

        prefix = evaluate_alliance(
            case.totals[:t],
            items=cut(case.items),
            tension=cut(case.tension),
            therapist_totals=cut(case.therapist),
            settings=cfg,
        ).signals
        assert prefix == full[:t]


@given(
    scores=st.lists(st.one_of(st.none(), st.integers(0, 27)), min_size=1, max_size=12),
    item9=st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=12, max_size=12),
)
def test_outcome_signals_for_a_session_depend_only_on_the_sessions_up_to_it(scores, item9):
    risk = [{"phq9_9": value} for value in item9[: len(scores)]]
    full = outcome_signals(scores, instrument="PHQ-9", risk_answers=risk)
    for t in range(1, len(scores) + 1):
        assert outcome_signals(scores[:t], instrument="PHQ-9", risk_answers=risk[:t]) == full[:t]


@given(case=series(), cfg=settings)
def test_every_session_gets_a_list_and_signals_carry_their_session(case, cfg):
    per_session = _run(case, cfg).signals
    assert len(per_session) == len(case.totals)
    for number, session in enumerate(per_session, start=1):
        assert all(signal.session == number for signal in session)
        assert len({signal.kind for signal in session}) == len(session)
