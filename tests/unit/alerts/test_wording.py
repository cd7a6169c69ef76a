"""Repair suggestions and plain-language lines: complete in both languages, specific to what dropped."""

from __future__ import annotations

import pytest

from services.alerts.repair import (
    REPAIR_TOPICS,
    SUGGESTIONS,
    get_suggestion,
    repair_suggestions,
    suggestions_for_evidence,
    topics_for_evidence,
)
from services.alerts.summary import describe_signal, number, summarize_alert
from services.signals import (
    ALLIANCE_KINDS,
    COMPONENT_DROP,
    OUTCOME_KINDS,
    RUPTURE_DROP,
    TENSION,
    alliance_signals,
    outcome_signals,
)


def test_every_topic_has_suggestions_in_english_and_spanish_with_unique_keys() -> None:
    assert set(SUGGESTIONS) == set(REPAIR_TOPICS)
    keys = [s.key for suggestions in SUGGESTIONS.values() for s in suggestions]
    assert len(keys) == len(set(keys))
    for topic, suggestions in SUGGESTIONS.items():
        assert len(suggestions) >= 3, topic
        for suggestion in suggestions:
            assert suggestion.key.startswith(f"{topic}.")
            assert suggestion.in_language("en") == suggestion.text.strip()
            assert suggestion.in_language("es").strip()
            assert suggestion.in_language("es") != suggestion.text  # the catalog has its Spanish
            assert get_suggestion(suggestion.key) is suggestion
    assert repair_suggestions("nonsense") == SUGGESTIONS["general"]
    assert get_suggestion("rapport.nope") is None


def test_suggestions_follow_the_component_that_dropped() -> None:
    entries = [
        {
            "kind": COMPONENT_DROP,
            "evidence": {
                "component": "realistic_goals",
                "components": [{"component": "realistic_goals"}, {"component": "rapport"}],
            },
        },
        {"kind": TENSION, "evidence": {"tension": 3}},
    ]
    assert topics_for_evidence(entries) == ["realistic_goals", "rapport", "tension", "general"]
    assert suggestions_for_evidence(entries)[0].topic == "realistic_goals"
    assert topics_for_evidence([{"kind": RUPTURE_DROP, "evidence": {}}]) == ["general"]
    largest = [{"kind": RUPTURE_DROP, "evidence": {}, "largest_drop": {"component": "shared_responsibility"}}]
    assert topics_for_evidence(largest) == ["shared_responsibility", "general"]


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_signal_kind_reads_as_a_sentence_with_its_numbers(language: str) -> None:
    per_session = alliance_signals(
        [36, 37, 36, 37, 25, 26, 27, 37],
        items=[
            [9, 9, 9, 9],
            [10, 9, 9, 9],
            [9, 9, 9, 9],
            [10, 9, 9, 9],
            [9, 2, 7, 7],
            [7, 6, 7, 6],
            [7, 7, 7, 6],
            [10, 9, 9, 9],
        ],
        tension=[0, 0, 0, 0, 3, 0, 0, 0],
        therapist_totals=[None, None, None, None, 38, None, None, None],
    )
    seen = {}
    for session in per_session:
        for signal in session:
            seen[signal.kind] = describe_signal(signal.kind, signal.evidence, language=language)
    assert set(seen) == set(ALLIANCE_KINDS) - {"UNREPAIRED"}
    seen["UNREPAIRED"] = describe_signal("UNREPAIRED", {"baseline": 36.5, "sessions_open": 3}, language=language)
    outcome = outcome_signals(
        [16, 16, 15, 15, 22], instrument="PHQ-9", risk_answers=[{"phq9_9": 0}] * 4 + [{"phq9_9": 1}]
    )
    for session in outcome:
        for signal in session:
            seen[signal.kind] = describe_signal(signal.kind, signal.evidence, instrument="PHQ-9", language=language)
    assert {"NOT_ON_TRACK", "RELIABLE_DETERIORATION", "RISK"} <= set(seen) <= set(ALLIANCE_KINDS) | set(OUTCOME_KINDS)
    for kind, line in seen.items():
        assert line, kind
        assert "{" not in line, (kind, line)
    assert "25" in seen[RUPTURE_DROP]
    assert ("mutual goals" if language == "en" else "objetivos compartidos") in seen[COMPONENT_DROP]


def test_numbers_read_like_scores() -> None:
    assert (number(27.0), number(35.75), number(3), number(None)) == ("27", "35.8", "3", "None")


def test_summary_of_an_empty_or_unknown_alert_still_says_something() -> None:
    assert summarize_alert("alliance", []) == "Something to look at"
    assert summarize_alert("outcome", [], language="es") == "Algo que revisar"
    assert summarize_alert("alliance", [], language="fr") == "Something to look at"
