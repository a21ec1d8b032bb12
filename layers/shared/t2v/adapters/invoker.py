"""Lambda adapter: hand an event to a function asynchronously (as S3 and EventBridge invoke it)."""

from __future__ import annotations

import json
from typing import Any

from t2v.adapters import boto3_module
from t2v.errors import PipelineError


class HandOffError(PipelineError):
    """Lambda did not queue the asynchronous invocation; the caller's own retry tries again."""

    code = "HandOffFailed"
    retryable = True


class AsyncInvoker:
    def __init__(self, function_name: str, *, client: Any | None = None) -> None:
        self._function_name = function_name
        self._client = client

    def __call__(self, event: dict[str, Any]) -> None:
        """Queue one invocation of the function with `event` (InvocationType Event: Lambda retries
        it twice on failure, then keeps it in the function's dead-letter queue)."""
        client: Any = self._client or boto3_module().client("lambda")
        answer = client.invoke(
            FunctionName=self._function_name,
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )
        if answer.get("StatusCode") != 202:
            raise HandOffError(f"Lambda answered {answer.get('StatusCode')} to an asynchronous invoke")
