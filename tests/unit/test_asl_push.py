"""The state machine's push wiring: push off takes today's path, push on parks its waits."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.conftest import ROOT

ASL = json.loads((ROOT / "statemachine" / "pipeline.asl.json").read_text())
STATES = ASL["States"]


def template() -> dict[str, Any]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor(
        "!",
        lambda loader, suffix, node: {
            suffix: loader.construct_sequence(node)
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_scalar(node)
            if isinstance(node, yaml.ScalarNode)
            else loader.construct_mapping(node)
        },
    )
    data: dict[str, Any] = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    return data


def test_the_first_wait_is_chosen_by_the_template_push_off_being_todays_path() -> None:
    assert STATES["Submit"]["Next"] == "AdmittedOrWaiting"  # capacity first (tests/unit/test_asl_capacity.py)
    assert STATES["AdmittedOrWaiting"]["Default"] == "${AfterSubmit}"
    machine = template()["Resources"]["VideoStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["AfterSubmit"] == {
        "If": ["PushOn", "ParkForPush", "WaitForVideo"]
    }
    assert STATES["WaitForVideo"] == {
        "Type": "Wait",
        "Comment": STATES["WaitForVideo"]["Comment"],
        "SecondsPath": "$.status.Payload.wait_seconds",
        "Next": "CheckStatus",
    }


def test_the_loop_parks_only_when_the_status_function_says_so() -> None:
    choices = STATES["RouteByState"]["Choices"]
    park = choices[-1]
    assert park["Next"] == "ParkForPush"
    assert park["And"] == [
        {"Variable": "$.status.Payload.park", "IsPresent": True},
        {"Variable": "$.status.Payload.park", "BooleanEquals": True},
    ]
    # Terminal states are routed before the park rule; otherwise the Wait state as today.
    assert [c["Next"] for c in choices[:-1]] == [
        "Finalize",
        "ProviderFailed",
        "TaskCanceled",
        "TaskUnknown",
        "DeadlinePassed",
        "ParkForCapacity",
    ]
    assert STATES["RouteByState"]["Default"] == "WaitForVideo"


def test_the_parked_wait_times_out_into_the_status_check_and_falls_back_to_a_wait_on_errors() -> None:
    park = STATES["ParkForPush"]
    assert park["Resource"] == "arn:${Partition}:states:::lambda:invoke.waitForTaskToken"
    assert park["Parameters"]["Payload"] == {"job_id.$": "$.job_id", "token.$": "$$.Task.Token"}
    assert park["TimeoutSecondsPath"] == "$.status.Payload.wait_seconds"
    assert park["ResultPath"] is None  # the turn's state passes through untouched
    assert park["Next"] == "CheckStatus"
    assert park["Catch"] == [
        {"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": "CheckStatus"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "WaitForVideo"},
    ]
    assert "States.Timeout" not in {n for r in park["Retry"] for n in r["ErrorEquals"]}


def test_the_public_callback_is_throttled_at_the_stage_and_its_reserve_is_opt_in() -> None:
    resources, params = template()["Resources"], template()["Parameters"]
    # The stage throttles the callback route (with push on, where the route exists) before any Lambda
    settings = resources["Api"]["Properties"]["MethodSettings"]["If"]
    assert settings[0] == "PushOn" and settings[2] == {"Ref": "AWS::NoValue"}
    [route] = settings[1]
    assert (route["ResourcePath"], route["HttpMethod"]) == ("/~1callbacks~1dashscope", "POST")
    assert route["ThrottlingRateLimit"] == {"Ref": "CallbackRateLimit"}
    assert route["ThrottlingBurstLimit"] == {"Ref": "CallbackBurstLimit"}
    assert (params["CallbackRateLimit"]["Default"], params["CallbackBurstLimit"]["Default"]) == (10, 20)
    path = resources["CallbackFunction"]["Properties"]["Events"]["DashScopePush"]["Properties"]["Path"]
    assert route["ResourcePath"] == "/" + path.replace("/", "~1")  # API Gateway's escaped form of the path
    # Reserved concurrency: off by default (an account with a quota of 10 can reserve none)
    reserve = resources["CallbackFunction"]["Properties"]["ReservedConcurrentExecutions"]["If"]
    assert reserve[0] == "ReservesCallback" and params["CallbackReservedConcurrency"]["Default"] == 0
