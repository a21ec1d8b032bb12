"""callback: DashScope's task-finished pushes (via Alibaba Cloud EventBridge) wake the job's wait.

Public route (EventBridge cannot sign with SigV4): the HTTP target's token header is the credential.
A missing or wrong token gets 401 and nothing else. The push is only a hint; see `t2v.push`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from t2v.push import MAX_BODY_BYTES, TOKEN_HEADER, PushError, receive_push
from t2v.signals import Signal
from t2v.wiring import push_deps, signals

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # not patch_all: it imports sqlite3, http.client, ...


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def _body(event: dict[str, Any]) -> bytes:
    """The body's bytes, cut just past the limit (so the domain refuses it, after the token check)."""
    raw = str(event.get("body") or "")
    if len(raw) > 2 * MAX_BODY_BYTES:  # too large whatever its encoding
        return raw[: MAX_BODY_BYTES + 1].encode()
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return b"\x00"  # not JSON: refused as such once the token has been checked
    return raw.encode()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    try:
        outcome, push = receive_push(headers.get(TOKEN_HEADER), _body(event), push_deps())
    except PushError as exc:
        logger.warning("push refused", extra={"code": exc.code, "status": exc.http_status})
        if exc.http_status == 401:
            signals().count(Signal.CALLBACK_TOKEN_REFUSALS)  # the operator's alarm: a wrong or missing token
            return _response(401, {"message": "Unauthorized"})
        return _response(exc.http_status, {"code": exc.code, "message": str(exc)})
    logger.info("push", extra={"task_id": push.task_id, "event_id": push.event_id, "outcome": outcome.value})
    return _response(200, {"outcome": outcome.value})
