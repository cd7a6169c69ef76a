"""The alliance rules take the cutoff, its operator, the reliable-change value and the direction from the
instrument's definition file: a licensed instrument's own file changes what fires, with no code change."""

import dataclasses
from pathlib import Path

from services.measures import load_instrument, load_instrument_file
from services.measures.instrument import Cutoff
from services.signals import DEFAULT_SETTINGS, LOW_ALLIANCE, RUPTURE_DROP, evaluate_alliance

FIXTURES = Path(__file__).parent / "fixtures"
MEASURES = Path(__file__).parents[1] / "measures" / "fixtures"


def kinds(totals, instrument):
    settings = DEFAULT_SETTINGS.for_instrument(instrument)
    return [[s.kind for s in session] for session in evaluate_alliance(totals, settings=settings).signals]


def test_a_licensed_file_saying_at_or_below_flags_a_total_of_exactly_the_cutoff():
    strict = load_instrument_file(MEASURES / "srs_like.json")  # "< 36", no reliable-change value
    at_or_below = load_instrument_file(FIXTURES / "srs_like_at_or_below.json")  # "<= 36", RC 4.5
    totals = [38.0, 38.2, 36.0]
    assert kinds(totals, strict) == [[], [], []]
    assert kinds(totals, at_or_below) == [[], [], [LOW_ALLIANCE]]
    evidence = evaluate_alliance(totals, settings=DEFAULT_SETTINGS.for_instrument(at_or_below)).signals[2][0].evidence
    assert (evidence["cutoff"], evidence["operator"]) == (36.0, "<=")


def test_the_reliable_change_value_comes_from_the_file_and_none_turns_the_drop_rule_off():
    strict = load_instrument_file(MEASURES / "srs_like.json")
    at_or_below = load_instrument_file(FIXTURES / "srs_like_at_or_below.json")
    totals = [39.0, 39.5, 34.8]  # a drop of 4.7: reliable at 4.5, and the file with no value has no drop rule
    assert RUPTURE_DROP in kinds(totals, at_or_below)[2]
    assert RUPTURE_DROP not in kinds(totals, strict)[2]
    shipped = load_instrument("PARTNERSHIP-CHECK")  # RC 5.37: 4.7 is not reliable
    assert RUPTURE_DROP not in kinds(totals, shipped)[2]


def test_a_practice_override_changes_the_cutoff_value_but_keeps_the_files_operator():
    at_or_below = load_instrument_file(FIXTURES / "srs_like_at_or_below.json")
    settings = DEFAULT_SETTINGS.with_changes(cutoff_overrides={"SRS-LIKE-LE": 34}).for_instrument(at_or_below)
    assert (settings.low_cutoff, settings.low_cutoff_operator, settings.alliance_rc) == (34.0, "<=", 4.5)


def test_a_higher_worse_alliance_instrument_reads_a_rise_as_the_rupture():
    data = load_instrument_file(FIXTURES / "srs_like_at_or_below.json")
    worse = dataclasses.replace(data, direction="higher_worse", cutoff=Cutoff(20, ">="))
    settings = DEFAULT_SETTINGS.for_instrument(worse)
    result = evaluate_alliance([10.0, 10.0, 10.0, 21.0, 10.0], settings=settings)
    assert [s.kind for s in result.signals[3]] == ["RUPTURE_DEV", "RUPTURE_DROP", LOW_ALLIANCE]
    assert result.signals[3][0].evidence["threshold"] == 16.0  # m + k*s
    assert result.alerts[0].repaired_session == 5
