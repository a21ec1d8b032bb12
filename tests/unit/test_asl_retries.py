"""Every retryable error a Lambda of the workflow raises is retried by the state machine, by name."""

from __future__ import annotations

import json

from t2v.adapters.invoker import HandOffError
from t2v.errors import CreateInProgressError, EventPublishError, NotificationInProgressError, PipelineError
from t2v.intake import PromptFileIncompleteError
from t2v.media import DownloadError

from tests.conftest import ROOT

ASL = json.loads((ROOT / "statemachine" / "pipeline.asl.json").read_text())
# Raised only by intake, which S3, EventBridge and intake itself invoke asynchronously: Lambda
# retries those invocations (twice, then the dead-letter queue), not the state machine.
ASYNC_ONLY = frozenset({PromptFileIncompleteError.__name__, HandOffError.__name__})


def retried_names(state: str) -> set[str]:
    return {name for rule in ASL["States"][state].get("Retry", []) for name in rule["ErrorEquals"]}


def all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *all_subclasses(sub)]
    return found


def test_each_retryable_error_is_retried_where_it_can_be_raised() -> None:
    assert DownloadError.__name__ in retried_names("Finalize")
    assert CreateInProgressError.__name__ in retried_names("Submit")
    for state in ("Finalize", "RecordOutcome", "RecordFailure"):
        # A live announcer holds the claim: come back once it finished or went stale.
        assert NotificationInProgressError.__name__ in retried_names(state)
        # EventBridge refused the outcome event (FailedEntryCount > 0): send it again, never drop it.
        assert EventPublishError.__name__ in retried_names(state)
    everywhere = set().union(*(retried_names(s) for s in ASL["States"] if ASL["States"][s]["Type"] == "Task"))
    retryable = {cls.__name__ for cls in all_subclasses(PipelineError) if getattr(cls, "retryable", False)}
    assert retryable - ASYNC_ONLY <= everywhere, retryable - ASYNC_ONLY - everywhere


def test_a_killed_worker_is_retried_in_every_task() -> None:
    for name, state in ASL["States"].items():
        if state["Type"] == "Task":
            assert {"Lambda.ServiceException", "Sandbox.Timedout"} <= retried_names(name), name


def test_download_retries_span_minutes_not_seconds() -> None:
    # The provider keeps a finished video for 24 h: transient download failures must not lose a paid video.
    [rule] = [r for r in ASL["States"]["Finalize"]["Retry"] if r["ErrorEquals"] == ["DownloadError"]]
    waits = [
        min(rule.get("MaxDelaySeconds", 10**9), rule["IntervalSeconds"] * rule["BackoffRate"] ** k)
        for k in range(rule["MaxAttempts"])
    ]
    assert sum(waits) >= 300
