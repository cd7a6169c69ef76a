import pytest

from services.measures import clinical_cutoffs, is_reliable, load_instrument, rc, rci, sdiff, se


def test_o1_standard_error_sdiff_and_reliable_change():
    assert round(se(10.5, 0.961), 6) == 2.073584
    assert round(sdiff(10.5, 0.961), 6) == 2.932490
    assert round(rc(10.5, 0.961), 6) == 5.747681


def test_o2_core10_cutoffs_and_reliable_change():
    norms = load_instrument("CORE-10").norms
    assert norms is not None
    cutoffs = clinical_cutoffs(norms.clinical_mean, norms.clinical_sd, norms.general_mean, norms.general_sd)
    assert round(cutoffs.a, 2) == 4.30
    assert round(cutoffs.b, 2) == 14.30
    assert round(cutoffs.c, 2) == 10.46
    assert round(rc(7.7, 0.90), 3) == 6.749
    assert round(rci(22, 12, 7.7, 0.90), 3) == -2.904
    assert is_reliable(22, 12, 7.7, 0.90)


def test_partnership_check_reliable_change_comes_from_its_design_defaults():
    definition = load_instrument("PARTNERSHIP-CHECK").reliable_change
    assert definition is not None
    assert definition.sd is not None
    assert definition.reliability is not None
    assert round(rc(definition.sd, definition.reliability), 2) == definition.value == 5.37


def test_core10_reliable_change_of_7_is_the_first_whole_point_at_or_above_6_749():
    definition = load_instrument("CORE-10").reliable_change
    assert definition is not None
    assert definition.sd is not None
    assert definition.reliability is not None
    exact = rc(definition.sd, definition.reliability)
    assert definition.value - 1 < exact <= definition.value


def test_a_change_just_below_the_reliable_change_value_is_not_reliable():
    assert not is_reliable(20, 14.26, 10.5, 0.961)
    assert is_reliable(20, 14.25, 10.5, 0.961)


@pytest.mark.parametrize(("sd", "reliability"), [(0, 0.9), (-1, 0.9), (5, 1.0), (5, -0.1)])
def test_impossible_inputs_are_refused(sd, reliability):
    with pytest.raises(ValueError, match="must"):
        se(sd, reliability)
