"""The park and callback handlers, in-process against moto (real HTTP), fed the sample events of
the one corpus (events/park.json, events/callback.json) as Step Functions and API Gateway send them."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from t2v.adapters.jobs_repo import JobsRepository
from t2v.adapters.task_owners import TaskOwners
from t2v.push import TOKEN_HEADER

from tests.conftest import lambda_context, load_event

park_app = importlib.import_module("functions.park.app")
callback_app = importlib.import_module("functions.callback.app")

PARK = load_event("park.json")
CALLBACK = load_event("callback.json")
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


@pytest.fixture
def job(stack: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The sample park event's job, bound to the sample push's task, and the push token in a secret."""
    token = CALLBACK["headers"][TOKEN_HEADER]
    secret = boto3.client("secretsmanager").create_secret(Name=f"{stack.secret_id}-push", SecretString=token)
    monkeypatch.setenv("CALLBACK_SECRET_ID", secret["ARN"])
    repo = JobsRepository(stack.table)
    job_id = str(PARK["job_id"])
    repo.create_if_absent(
        job_id, request={"prompt": "p"}, source="api", origin={}, now=T0, deadline_at=T0 + timedelta(hours=2)
    )
    task_id = json.loads(CALLBACK["body"])["data"]["task_id"]
    assert (
        TaskOwners(stack.table).record_task(job_id, task_id=task_id, request_id="req-1", now=T0) is not None
    )
    return job_id


def test_the_sample_push_wakes_the_wait_the_sample_park_event_parked(stack: Any, job: str) -> None:
    # Given the job's wait parked by the ParkForPush state's payload
    parked = park_app.lambda_handler(PARK, lambda_context("park"))
    assert parked == {"job_id": job, "parked": True}
    # When the task-finished push arrives through the public route
    answer = callback_app.lambda_handler(CALLBACK, lambda_context("callback"))
    # Then it is accepted and wakes that wait, and its redelivery is recognised
    assert (answer["statusCode"], json.loads(answer["body"])) == (200, {"outcome": "woken"})
    again = callback_app.lambda_handler(CALLBACK, lambda_context("callback"))
    assert json.loads(again["body"]) == {"outcome": "duplicate"}
    assert stack.job(job)["pushes"] == 1


def test_the_sample_push_with_another_token_is_401_and_nothing_else(stack: Any, job: str) -> None:
    forged = {**CALLBACK, "headers": {**CALLBACK["headers"], TOKEN_HEADER: "not-the-token"}}
    answer = callback_app.lambda_handler(forged, lambda_context("callback"))
    assert (answer["statusCode"], json.loads(answer["body"])) == (401, {"message": "Unauthorized"})
    assert "pushes" not in stack.job(job)
