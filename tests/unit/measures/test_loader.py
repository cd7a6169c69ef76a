import copy
import json
from pathlib import Path
from typing import Any

import pytest

from services.measures import (
    DefinitionError,
    UnknownInstrumentError,
    all_instruments,
    definitions_directory,
    load_instrument,
    load_instrument_data,
    load_instrument_file,
)

FIXTURES = Path(__file__).parent / "fixtures"


def _phq9_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((definitions_directory() / "phq9.json").read_text(encoding="utf-8"))
    return data


def test_every_shipped_definition_loads():
    codes = [instrument.code for instrument in all_instruments()]
    assert codes == [
        "CORE-10",
        "GAD-7",
        "GOAL-PROGRESS",
        "PARTNERSHIP-CHECK",
        "PHQ-9",
        "THERAPIST-PARTNERSHIP-CHECK",
    ]


def test_load_instrument_returns_the_shipped_definition():
    phq9 = load_instrument("PHQ-9")
    assert phq9.code == "PHQ-9"
    assert phq9.source.endswith("phq9.json")
    assert load_instrument("PHQ-9") is phq9


def test_unknown_code_lists_the_shipped_ones():
    with pytest.raises(UnknownInstrumentError, match=r"no instrument 'SRS'.*PHQ-9"):
        load_instrument("SRS")


@pytest.mark.parametrize(
    ("name", "code", "kind", "direction", "cutoff", "components"),
    [
        ("srs_like", "SRS-LIKE", "alliance", "higher_better", ("<", 36.0), 4),
        ("ors_like", "ORS-LIKE", "outcome", "higher_better", ("<", 25.0), 0),
        ("oq_like", "OQ-LIKE", "outcome", "higher_worse", (">=", 64.0), 0),
    ],
)
def test_licensed_shaped_fixtures_load_with_no_code_change(name, code, kind, direction, cutoff, components):
    instrument = load_instrument_file(FIXTURES / f"{name}.json")
    assert instrument.code == code
    assert instrument.kind == kind
    assert instrument.direction == direction
    assert instrument.cutoff is not None
    assert (instrument.cutoff.operator, instrument.cutoff.value) == cutoff
    assert len(instrument.components) == components
    assert instrument.licence.text_may_be_altered is False


def _mutate(data: dict[str, Any], path: str, value: object) -> None:
    """Set (or with value ... delete) a dotted path such as items.3.options."""
    keys = path.split(".")
    target: Any = data
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if value is ...:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


@pytest.mark.parametrize(
    ("path", "value", "field", "problem"),
    [
        ("title.es", ..., "title.es", "translation is missing"),
        ("items.2.text.fr", "Texte", "items[2].text.fr", "not one of the declared languages"),
        ("items.4.loinc", 44251, "items[4].loinc", "expected a non-empty string"),
        ("items.0.colour", "red", "items[0].colour", "not a known field"),
        ("items.1.options", "frequencies", "items[1].options", "names no option set 'frequencies'"),
        ("items.1.id", "phq9_1", "items[1].id", "'phq9_1' appears twice"),
        ("items.3.type", "slider", "items[3].type", "expected one of choice, range, text"),
        ("option_sets.frequency.2.value", "2", "option_sets.frequency[2].value", "expected a number"),
        ("option_sets.frequency.3.value", 2, "option_sets.frequency[3].value", "appears twice"),
        ("range.max", 30, "range.max", "is 30 but the scored items give 27"),
        ("cutoff.value", 40, "cutoff.value", "outside the range"),
        ("cutoff.operator", "=>", "cutoff.operator", "expected one of"),
        ("direction", "up", "direction", "expected one of higher_worse, higher_better"),
        ("kind", "screening", "kind", "expected one of outcome"),
        ("scoring.missing_tolerated", 9, "scoring.missing_tolerated", "below the number of scored items"),
        ("scoring.method", "median", "scoring.method", "expected one of sum, mean"),
        ("bands.1.min", 4, "bands[1].min", "overlaps the previous band"),
        ("bands.4.max", 26, "bands[4].max", "must equal range.max"),
        ("reliable_change.value", -6, "reliable_change.value", "must be positive"),
        ("licence.attribution", "Pfizer", "licence.attribution", "expected an object"),
        ("validated", "yes", "validated", "expected true or false"),
        ("format", 2, "format", "expected 1"),
        ("code", ..., "code", "is required"),
        ("items.9.scored", True, "items[9].required", "a scored item is always required"),
    ],
)
def test_a_bad_definition_names_the_file_and_the_field(path, value, field, problem):
    data = _phq9_data()
    _mutate(data, path, value)
    with pytest.raises(DefinitionError) as caught:
        load_instrument_data(data, source="practice/phq9-custom.json")
    message = str(caught.value)
    assert message.startswith(f"practice/phq9-custom.json: {field}: ")
    assert problem in message
    assert caught.value.field == field


def test_a_risk_text_item_is_refused():
    data = _phq9_data()
    data["items"].append({"id": "note", "type": "text", "risk": True, "text": {"en": "Note", "es": "Nota"}})
    with pytest.raises(DefinitionError, match=r"items\[10\]\.risk: a text item cannot be scored"):
        load_instrument_data(data, source="x.json")


def test_proration_needs_items_that_share_a_range():
    data = _phq9_data()
    data["items"][0]["options"] = [
        {"value": 0, "label": {"en": "No", "es": "No"}},
        {"value": 5, "label": {"en": "Yes", "es": "Sí"}},
    ]
    data["range"]["max"] = 29
    with pytest.raises(DefinitionError, match=r"scoring\.prorate: needs every scored item to share one value range"):
        load_instrument_data(data, source="x.json")


def test_a_goal_item_must_carry_the_goal_placeholder():
    data = json.loads((definitions_directory() / "goal_progress.json").read_text(encoding="utf-8"))
    broken = copy.deepcopy(data)
    broken["items"][1]["text"]["es"] = "Mi objetivo"
    with pytest.raises(DefinitionError, match=r"goals\.json: items\[1\]\.text\.es: must contain \{goal\}"):
        load_instrument_data(broken, source="goals.json")


def test_a_subscale_naming_an_unknown_item_is_refused():
    data = _phq9_data()
    data["scoring"]["subscales"] = [{"id": "somatic", "items": ["phq9_3", "phq9_33"]}]
    with pytest.raises(DefinitionError, match=r"scoring\.subscales\[0\]\.items\[1\]: 'phq9_33' is not a scored"):
        load_instrument_data(data, source="x.json")


def test_a_slider_step_must_divide_its_range(tmp_path):
    data = json.loads((FIXTURES / "srs_like.json").read_text(encoding="utf-8"))
    data["items"][2]["range"]["step"] = 0.3
    path = tmp_path / "srs.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"srs\.json: items\[2\]\.range\.step: must divide"):
        load_instrument_file(path)


def test_invalid_json_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "format": 1,\n  "code": "X",,\n}', encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"broken\.json: \(json\): invalid JSON at line 3"):
        load_instrument_file(path)


def test_a_missing_file_is_a_definition_error(tmp_path):
    with pytest.raises(DefinitionError, match=r"nowhere\.json: \(file\): cannot be read"):
        load_instrument_file(tmp_path / "nowhere.json")
