from pathlib import Path

import pytest

from services.measures import Instrument, load_instrument_file

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def srs_like() -> Instrument:
    return load_instrument_file(FIXTURES / "srs_like.json")


@pytest.fixture(scope="session")
def ors_like() -> Instrument:
    return load_instrument_file(FIXTURES / "ors_like.json")


@pytest.fixture(scope="session")
def oq_like() -> Instrument:
    return load_instrument_file(FIXTURES / "oq_like.json")
