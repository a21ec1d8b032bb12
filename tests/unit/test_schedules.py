"""The sandbox fires the template's rate schedules (moto stores them and never fires them)."""

from __future__ import annotations

import pytest
from t2v_sandbox.schedules import period_seconds


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(5 minutes)", 300.0),
        ("rate(1 minute)", 60.0),
        ("rate(2 hours)", 7200.0),
        ("rate(1 day)", 86400.0),
    ],
)
def test_rate_expressions_give_their_period(expression: str, seconds: float) -> None:
    assert period_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["cron(0 12 * * ? *)", "rate(five minutes)", "rate(5 weeks)"])
def test_what_the_sandbox_cannot_fire_is_none(expression: str) -> None:
    assert period_seconds(expression) is None
