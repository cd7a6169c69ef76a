import pytest

from services.measures import load_instrument

PFIZER_LINE = "No permission required to reproduce, translate, display or distribute."
COMPONENTS = ("rapport", "mutual_goals", "realistic_goals", "shared_responsibility")


def test_phq9_carries_the_loinc_codes_and_the_risk_item():
    phq9 = load_instrument("PHQ-9")
    assert phq9.codes is not None
    assert (phq9.codes.system, phq9.codes.panel, phq9.codes.total) == ("http://loinc.org", "44249-1", "44261-6")
    assert [item.loinc for item in phq9.scored_items] == [
        "44250-9",
        "44255-8",
        "44259-0",
        "44254-1",
        "44251-7",
        "44258-2",
        "44252-5",
        "44253-3",
        "44260-8",
    ]
    assert [item.id for item in phq9.risk_items] == ["phq9_9"]
    assert phq9.item("phq9_1").text["en"] == "Little interest or pleasure in doing things"
    assert (
        phq9.item("phq9_9").text["en"]
        == "Thoughts that you would be better off dead or of hurting yourself in some way"
    )
    assert [option.label["en"] for option in phq9.item("phq9_1").options] == [
        "Not at all",
        "Several days",
        "More than half the days",
        "Nearly every day",
    ]


def test_gad7_carries_the_loinc_codes():
    gad7 = load_instrument("GAD-7")
    assert gad7.codes is not None
    assert (gad7.codes.panel, gad7.codes.total) == ("69737-5", "70274-6")
    assert [item.loinc for item in gad7.scored_items] == [
        "69725-0",
        "68509-9",
        "69733-4",
        "69734-2",
        "69735-9",
        "69689-8",
        "69736-7",
    ]
    assert gad7.risk_items == ()


@pytest.mark.parametrize("code", ["PHQ-9", "GAD-7"])
def test_pfizer_instruments_are_unaltered_with_the_copyright_line(code):
    instrument = load_instrument(code)
    assert instrument.validated is True
    assert instrument.licence.text_may_be_altered is False
    assert PFIZER_LINE in instrument.licence.attribution["en"]
    assert (
        "No se requiere permiso para reproducir, traducir, presentar o distribuir"
        in (instrument.licence.attribution["es"])
    )
    assert instrument.languages == ("en", "es")


@pytest.mark.parametrize(
    ("code", "low", "high", "direction", "cutoff", "operator", "rc"),
    [
        ("PHQ-9", 0, 27, "higher_worse", 10, ">=", 6),
        ("GAD-7", 0, 21, "higher_worse", 8, ">=", 4),
        ("CORE-10", 0, 40, "higher_worse", 11, ">=", 7),
        ("PARTNERSHIP-CHECK", 0, 40, "higher_better", 36, "<", 5.37),
    ],
)
def test_ranges_directions_cutoffs_and_reliable_change_follow_the_specification(
    code, low, high, direction, cutoff, operator, rc
):
    instrument = load_instrument(code)
    assert (instrument.range_min, instrument.range_max, instrument.direction) == (low, high, direction)
    assert instrument.cutoff is not None
    assert (instrument.cutoff.value, instrument.cutoff.operator) == (cutoff, operator)
    assert instrument.reliable_change is not None
    assert instrument.reliable_change.value == rc


@pytest.mark.parametrize(
    ("code", "bands"),
    [
        ("PHQ-9", [(0, 4), (5, 9), (10, 14), (15, 19), (20, 27)]),
        ("GAD-7", [(0, 4), (5, 9), (10, 14), (15, 21)]),
    ],
)
def test_severity_bands(code, bands):
    assert [(band.min, band.max) for band in load_instrument(code).bands] == bands


def test_core10_has_its_own_licence_and_no_translation():
    core10 = load_instrument("CORE-10")
    assert core10.licence.name == "CC BY-NC-ND 4.0"
    assert core10.licence.copyright == "© CORE System Trust: https://www.coresystemtrust.org.uk/copyright.pdf"
    assert core10.licence.text_may_be_altered is False
    assert core10.licence.commercial_use is False
    assert core10.languages == ("en",)
    assert len(core10.scored_items) == 10
    assert [item.id for item in core10.items if item.reversed] == ["core10_2", "core10_3"]
    assert [item.id for item in core10.risk_items] == ["core10_6"]
    assert core10.norms is not None
    assert (core10.norms.clinical_mean, core10.norms.clinical_sd) == (19.7, 7.7)
    assert (core10.norms.general_mean, core10.norms.general_sd) == (4.7, 4.8)


def test_partnership_check_asks_the_four_components_and_is_flagged_not_validated():
    check = load_instrument("PARTNERSHIP-CHECK")
    assert check.kind == "alliance"
    assert check.validated is False
    assert check.components == COMPONENTS
    assert [item.id for item in check.scored_items] == [check.component_item(c).id for c in COMPONENTS]
    tension = check.items_with_role("tension")
    assert len(tension) == 1
    assert [option.value for option in tension[0].options] == [0, 1, 2, 3]
    assert tension[0].scored is False
    comment = check.items_with_role("comment")
    assert comment[0].type == "text"
    assert comment[0].required is False
    for language in ("en", "es"):
        assert all(item.text[language] for item in check.items)


def test_the_rotating_element_asks_each_of_the_five_once_over_five_sessions():
    check = load_instrument("PARTNERSHIP-CHECK")
    asked = [check.rotating_item("elements", session).role for session in range(1, 11)]
    assert asked[:5] == ["respect", "empathy", "sincerity", "safety", "hope"]
    assert asked[5:] == asked[:5]


def test_therapist_check_mirrors_the_client_components():
    therapist = load_instrument("THERAPIST-PARTNERSHIP-CHECK")
    assert therapist.kind == "therapist_alliance"
    assert therapist.components == COMPONENTS
    assert (therapist.range_min, therapist.range_max) == (0, 40)
    assert therapist.cutoff is None


def test_goal_progress_takes_up_to_three_goals_in_the_clients_words():
    goals = load_instrument("GOAL-PROGRESS")
    assert goals.kind == "goals"
    assert [item.id for item in goals.scored_items] == ["goal_1", "goal_2", "goal_3"]
    assert all(item.text_source == "episode_goal" and item.text["en"] == "{goal}" for item in goals.items)
    assert all((item.min_value, item.max_value) == (0, 10) for item in goals.items)
