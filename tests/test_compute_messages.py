"""The job summary names the CLV horizon in the model's unit and in months, as the demo's headline does."""

import pytest

from jobs.service.compute_value import horizon_words


@pytest.mark.parametrize(
    ("horizon", "unit", "words"),
    [
        (365.2425 / 7, "W", " over the next 52.18 weeks (12 months)"),
        (12, "M", " over the next 12 months"),
        (90, "D", " over the next 90 days (2.96 months)"),
        (1, "Y", " over the next 1 year (12 months)"),
        (None, "W", ""),
        (52, "fortnight", ""),
    ],
)
def testhorizon_words(horizon, unit, words):
    assert horizon_words(horizon, unit) == words
