"""Every registered mixer runs the shipped conformance suite (archsearch.testing.mixers)."""

import pytest

from archsearch.testing.mixers import Case, MixerConformance, conformance_cases


@pytest.fixture(params=conformance_cases(), ids=lambda c: c.id)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


class TestMixers(MixerConformance):
    pass
