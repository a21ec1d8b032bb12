"""Step Functions adapter: start (and stop) one execution per job, named after the job."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from t2v.adapters import boto3_module

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient


class Workflow:
    def __init__(self, state_machine_arn: str, *, client: SFNClient | None = None) -> None:
        self._arn = state_machine_arn
        self._client_obj = client

    @property
    def _client(self) -> SFNClient:
        if self._client_obj is None:
            self._client_obj = boto3_module().client("stepfunctions")
        return self._client_obj

    def start(self, job_id: str, payload: dict[str, Any]) -> bool:
        """The execution name is the job id, so a repeated trigger starts nothing new."""
        try:
            self._client.start_execution(
                stateMachineArn=self._arn, name=job_id, input=json.dumps(payload, ensure_ascii=False)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return False
            raise
        return True

    def execution_arn(self, job_id: str) -> str:
        prefix, name = self._arn.split(":stateMachine:", 1)
        return f"{prefix}:execution:{name}:{job_id}"

    def status(self, job_id: str) -> str | None:
        """The job's execution status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED); None: never started."""
        try:
            answer = self._client.describe_execution(executionArn=self.execution_arn(job_id))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise
        return str(answer["status"])

    def stop(self, job_id: str, *, cause: str) -> bool:
        try:
            self._client.stop_execution(executionArn=self.execution_arn(job_id), cause=cause)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return False
            raise
        return True


# A closed token: its task already ended (woken, timed out) or its execution stopped.
_CLOSED_TOKEN_CODES = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


class TaskTokens:
    """Completes parked `.waitForTaskToken` tasks (the waits a push wakes)."""

    def __init__(self, *, client: SFNClient | None = None) -> None:
        self._client_obj = client

    @property
    def _client(self) -> SFNClient:
        if self._client_obj is None:
            self._client_obj = boto3_module().client("stepfunctions")
        return self._client_obj

    def wake(self, token: str) -> bool:
        """End the parked wait now; False when its token is closed already (not an error: a
        duplicate or late push, or a wait that timed out a moment before)."""
        try:
            self._client.send_task_success(taskToken=token, output=json.dumps({"woken": True}))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _CLOSED_TOKEN_CODES:
                return False
            raise
        return True
