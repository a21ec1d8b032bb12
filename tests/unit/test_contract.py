"""The workflow contract: every JsonPath the ASL reads or writes names a field of t2v.contract's models,
and what each Task state sends its function validates as that function's input model."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel, EventBridgeModel
from pydantic import BaseModel, ValidationError
from t2v.contract import (
    FINALIZE_INPUT,
    CapacityWait,
    CatchInput,
    Ended,
    ExecutionInput,
    OutcomeInput,
    ParkRequest,
    PollDecision,
    PollTurn,
    StepError,
    SubmitInput,
    Succeeded,
)
from t2v.jobs import JobStatus
from t2v.push import TOKEN_HEADER, parse_push
from t2v_sandbox.template import load_template

from tests.conftest import ROOT, load_event

ASL = json.loads((ROOT / "statemachine" / "pipeline.asl.json").read_text(encoding="utf-8"))
STATES: dict[str, dict[str, Any]] = ASL["States"]


class _Invoke(BaseModel):
    """What a Task's ResultSelector keeps of a Lambda invoke: the function's result."""

    Payload: PollTurn | CapacityWait


class StateDocument(BaseModel):
    """The execution's state document: its input, plus what the ResultPaths put beside it."""

    job_id: str
    request: dict[str, Any]
    source: str
    origin: dict[str, Any]
    start_delay_seconds: int
    status: _Invoke  # Submit and CheckStatus: ResultPath $.status
    error: StepError  # every Catch: ResultPath $.error


# The model each Task state's function parses its payload with.
TARGETS: dict[str, type[BaseModel]] = {
    "Submit": SubmitInput,
    "CheckStatus": PollTurn,
    "Finalize": OutcomeInput,
    "RecordOutcome": OutcomeInput,
    "RecordFailure": CatchInput,
    "ParkForPush": ParkRequest,
    "ParkForCapacity": ParkRequest,
}
# Tasks that wait for a task token: the function's result is not theirs, a SendTaskSuccess's is.
CALLBACK_TASKS = {"ParkForPush", "ParkForCapacity"}
CONTEXT_PATHS = {"$$.Execution.Name", "$$.Task.Token"}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def field_at(model: type[BaseModel], path: str) -> Any:
    """The annotation a JsonPath (`$.a.b`) reaches in `model`; fails naming the missing step."""
    assert path.startswith("$."), path
    models, annotation = [model], None
    for step in path[2:].split("."):
        found = [m.model_fields[step] for m in models if step in m.model_fields]
        assert found, f"{path}: no field {step!r} in {[m.__name__ for m in models]}"
        annotation = found[0].annotation
        models = _models_in(annotation)
    return annotation


def json_paths(node: Any) -> list[tuple[str, str]]:
    """(key, path) of every `.$` parameter under `node`."""
    if not isinstance(node, dict):
        return []
    found = []
    for key, value in node.items():
        if key.endswith(".$") and isinstance(value, str):
            found.append((key[:-2], value))
        else:
            found.extend(json_paths(value))
    return found


def resolve(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for step in path[2:].split("."):
        value = value[step]
    return value


def payload_of(state: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """The payload a Task state sends, by applying its Parameters to a state document."""
    params = state["Parameters"]
    if "Payload.$" in params:
        resolved: dict[str, Any] = resolve(document, params["Payload.$"])
        return resolved
    payload: dict[str, Any] = {}
    for key, value in params["Payload"].items():
        if key.endswith(".$"):
            context = {"Execution": {"Name": document["job_id"]}, "Task": {"Token": "AQB-task-token"}}
            payload[key[:-2]] = (
                resolve(context, "$" + value[2:]) if value.startswith("$$.") else resolve(document, value)
            )
        else:
            payload[key] = value
    return payload


def sample_document(turn: PollTurn) -> dict[str, Any]:
    execution = ExecutionInput.model_validate(load_event("statemachine_input.json"))
    error = {"Error": "InvalidRequestError", "Cause": json.dumps({"errorMessage": "size: bad"})}
    return {
        **execution.model_dump(mode="json"),
        "status": {"Payload": turn.model_dump(mode="json")},
        "error": error,
    }


WAITING = PollTurn.model_validate(load_event("status.json"))
SUCCEEDED = WAITING.model_copy(
    update={
        "decision": PollDecision.SUCCEEDED,
        "outcome": Succeeded(video_url="https://media.pixverseai.cn/x.mp4", usage={"duration": 5}),
    }
)
FAILED = WAITING.model_copy(
    update={"decision": PollDecision.FAILED, "outcome": Ended(status=JobStatus.FAILED, code="X", message="y")}
)


def test_every_task_state_has_a_contract() -> None:
    tasks = {name for name, state in STATES.items() if state["Type"] == "Task"}
    assert tasks == set(TARGETS)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_json_path_a_task_reads_is_a_field_and_every_key_it_sends_is_an_input_field(name: str) -> None:
    state, target = STATES[name], TARGETS[name]
    for key, path in json_paths(state["Parameters"]):
        if path.startswith("$$."):
            assert path in CONTEXT_PATHS, path  # the execution is named by the job id; a park's token
        else:
            field_at(StateDocument, path)
        if key != "Payload":
            assert key in target.model_fields, f"{name} sends {key!r}, which {target.__name__} does not take"
    if name in CALLBACK_TASKS:
        assert "ResultSelector" not in state and state["ResultPath"] is None  # the turn passes through
        assert field_at(StateDocument, state["TimeoutSecondsPath"]) is int
        return
    assert state["ResultSelector"] == {"Payload.$": "$.Payload"}
    assert state["ResultPath"] in {"$.status", "$.result"}
    for catch in state.get("Catch", []):
        # A failed step's error lands where RecordFailure reads it; RecordFailure's own goes aside.
        expected = "$.notify_error" if name == "RecordFailure" else "$.error"
        assert catch["ResultPath"] == expected, name


def test_what_each_task_sends_validates_as_its_functions_input() -> None:
    waiting, succeeded, failed = (sample_document(t) for t in (WAITING, SUCCEEDED, FAILED))
    assert SubmitInput.model_validate(payload_of(STATES["Submit"], waiting)).execution == waiting["job_id"]
    assert PollTurn.model_validate(payload_of(STATES["CheckStatus"], waiting)) == WAITING
    finalize = FINALIZE_INPUT.validate_python(payload_of(STATES["Finalize"], succeeded))
    assert isinstance(finalize, OutcomeInput) and isinstance(finalize.outcome, Succeeded)
    ended = FINALIZE_INPUT.validate_python(payload_of(STATES["RecordOutcome"], failed))
    assert isinstance(ended, OutcomeInput) and ended.outcome == FAILED.outcome
    catch = FINALIZE_INPUT.validate_python(payload_of(STATES["RecordFailure"], waiting))
    assert isinstance(catch, CatchInput) and catch.error.message() == "size: bad"
    park = ParkRequest.model_validate(payload_of(STATES["ParkForPush"], waiting))
    assert (park.job_id, park.token) == (waiting["job_id"], "AQB-task-token")


def test_the_loop_routes_on_the_decision_and_waits_on_the_turns_seconds() -> None:
    route = STATES["RouteByState"]
    decisions = [c for c in route["Choices"] if "Variable" in c]
    assert {c["Variable"] for c in decisions} == {"$.status.Payload.decision"}
    assert field_at(StateDocument, "$.status.Payload.decision") is PollDecision
    # The one other rule parks a WAIT turn when push is on (tests/unit/test_asl_push.py).
    [park] = [c for c in route["Choices"] if "And" in c]
    assert {c["Variable"] for c in park["And"]} == {"$.status.Payload.park"}
    assert field_at(StateDocument, "$.status.Payload.park") is bool
    routed = {c["StringEquals"] for c in decisions}
    # QUEUED: a foreign task released, and the job's own create found the provider full (CapacityWait).
    assert routed == {d.value for d in PollDecision} - {PollDecision.WAIT.value} | {"QUEUED"}
    assert route["Default"] == "WaitForVideo"
    assert next(c["Next"] for c in decisions if c["StringEquals"] == "SUCCEEDED") == "Finalize"
    assert field_at(StateDocument, STATES["WaitForVideo"]["SecondsPath"]) is int
    assert field_at(ExecutionInput, STATES["Stagger"]["SecondsPath"]) is int


def test_a_renamed_field_is_refused_not_ignored() -> None:
    event = {**load_event("status.json"), "state": "RUNNING"}
    with pytest.raises(ValidationError, match="state"):
        PollTurn.model_validate(event)


def test_the_outcome_is_one_of_two_kinds() -> None:
    with pytest.raises(ValidationError):
        OutcomeInput.model_validate(
            {"job_id": "j", "outcome": {"kind": "ended", "status": "SUCCEEDED", "code": "x", "message": "y"}}
        )
    turn = PollTurn.model_validate_json(FAILED.model_dump_json())
    assert turn.outcome == FAILED.outcome and turn.submitted_at == WAITING.submitted_at


def test_the_events_corpus_speaks_the_contract() -> None:
    # Given the sample events `sam local invoke -e` and the docs use
    assert isinstance(SubmitInput.model_validate(load_event("submit.json")), SubmitInput)
    assert PollTurn.model_validate(load_event("status.json")).decision == PollDecision.WAIT
    finalize = FINALIZE_INPUT.validate_python(load_event("finalize.json"))
    assert isinstance(finalize, OutcomeInput) and isinstance(finalize.outcome, Succeeded)
    failure = FINALIZE_INPUT.validate_python(load_event("finalize_failure.json"))
    assert isinstance(failure, OutcomeInput) and isinstance(failure.outcome, Ended)
    catch = FINALIZE_INPUT.validate_python(load_event("finalize_catch.json"))
    assert isinstance(catch, CatchInput) and "1080P" in catch.error.message()
    # the ParkForPush state's payload, for the job the status sample polls
    park = ParkRequest.model_validate(load_event("park.json"))
    assert park.job_id == WAITING.job_id


def test_the_push_and_schedule_samples_are_what_their_routes_deliver() -> None:
    template = load_template(ROOT / "template.yaml")["Resources"]
    # The callback's sample is an API Gateway proxy event on its public route, with the token header
    # and a task-finished push for the task the status sample polls.
    route = template["CallbackFunction"]["Properties"]["Events"]["DashScopePush"]["Properties"]
    callback = APIGatewayProxyEventModel.model_validate(load_event("callback.json"))
    assert (callback.httpMethod, callback.resource) == (route["Method"], route["Path"])
    assert callback.headers is not None and callback.headers[TOKEN_HEADER]
    assert callback.requestContext.identity.userArn is None  # public: EventBridge cannot sign
    push = parse_push(str(callback.body).encode())
    assert (push.task_id, push.task_status, push.type) == (
        WAITING.task_id,
        "SUCCEEDED",
        "dashscope:System:AsyncTaskFinish",
    )
    # The sweeper's sample is what its Schedule rule sends.
    assert template["SweeperFunction"]["Properties"]["Events"]["Sweep"]["Type"] == "Schedule"
    sweep = EventBridgeModel.model_validate(load_event("sweeper.json"))
    assert (sweep.source, sweep.detail_type, sweep.detail) == ("aws.events", "Scheduled Event", {})


def test_every_function_has_a_sample_event() -> None:
    functions = sorted(d.name for d in (ROOT / "functions").iterdir() if (d / "app.py").is_file())
    events = {e.name for e in (ROOT / "events").glob("*.json")}
    assert {"submit", "status", "finalize", "intake", "api", "park", "callback", "sweeper"} <= set(functions)
    for name in functions:
        assert any(e == f"{name}.json" or e.startswith(f"{name}_") for e in events), name
