"""The budgets' template parameters reach the functions that read them, with the settings' defaults."""

from __future__ import annotations

from typing import Any

import pytest
from t2v import wiring
from t2v.config import AnnounceSettings, ApiSettings, ProviderSettings
from t2v_sandbox.template import load_template

from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")
ENV = {"JOBS_TABLE": "t", "DASHSCOPE_SECRET_ID": "s", "TOPIC_ARN": "arn:t"}


def variables(function: str) -> dict[str, Any]:
    props = TEMPLATE["Resources"][function]["Properties"]
    return {
        **TEMPLATE["Globals"]["Function"]["Environment"]["Variables"],
        **props["Environment"]["Variables"],
    }


def test_the_budget_parameters_and_their_defaults() -> None:
    params = TEMPLATE["Parameters"]
    assert (
        params["CallerDailyBudgetSeconds"]["Default"],
        params["CallerDailyBudgetSeconds"]["MinValue"],
    ) == (0, 0)
    assert (params["RefundsEnabled"]["Default"], params["RefundsEnabled"]["AllowedValues"]) == (
        "true",
        ["true", "false"],
    )
    bare = ProviderSettings.from_env(ENV)
    assert (bare.daily_budget_seconds, bare.caller_daily_budget_seconds, bare.budgets_on) == (0, 0, False)
    assert AnnounceSettings.from_env(ENV).refunds_enabled is True


@pytest.mark.parametrize("function", ["SubmitFunction", "ApiFunction"])
def test_the_charging_and_checking_functions_read_both_caps(function: str) -> None:
    env = variables(function)
    assert env["CALLER_DAILY_BUDGET_SECONDS"] == {"Ref": "CallerDailyBudgetSeconds"}
    assert env["DAILY_BUDGET_SECONDS"] == {"Ref": "DailyBudgetSeconds"}


@pytest.mark.parametrize("function", ["FinalizeFunction", "ApiFunction", "SweeperFunction", "IntakeFunction"])
def test_every_function_that_ends_jobs_reads_refunds_enabled(function: str) -> None:
    assert variables(function)["REFUNDS_ENABLED"] == {"Ref": "RefundsEnabled"}


def test_the_usage_route_is_an_iam_signed_get_on_the_api_function() -> None:
    event = TEMPLATE["Resources"]["ApiFunction"]["Properties"]["Events"]["GetUsage"]["Properties"]
    assert (event["Method"], event["Path"]) == ("GET", "/usage")
    assert "Auth" not in event  # the API's default authorizer: AWS_IAM


@pytest.mark.parametrize(("value", "wired"), [("true", True), ("false", False)])
def test_refunds_enabled_wires_the_ledger_into_every_ender(value: str, wired: bool) -> None:
    settings = ApiSettings.from_env(
        {
            **ENV,
            "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
            "REFUNDS_ENABLED": value,
        }
    )
    deps = wiring.build_announce_deps(settings)
    assert (deps.refunds is not None) == wired
