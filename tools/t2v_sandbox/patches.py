"""Patches that close moto 5.2.5's gaps against real AWS behaviour, installed once per process.

Every patch delegates to the active `Runtime`; with no sandbox running, moto behaves as shipped.
The exceptions are the Distributed Map features moto lacks (`patches_map`: ItemReader over JSON
Lines, ItemBatcher), which need no runtime and touch no definition that does not use them.
They replace moto's private names, so `install()` refuses any moto but `MOTO_VERSION`.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote_plus, unquote_plus

from t2v_sandbox import moto_atomic, patches_map

LOG = logging.getLogger("t2v_sandbox")
_install_lock = threading.Lock()
_ASYNC_RETRY_DELAYS = (60.0, 120.0)
# The moto these patches were written against: pyproject.toml's pin (a unit test keeps them equal).
MOTO_VERSION: Final = "5.2.5"


class MotoVersionError(RuntimeError):
    """The installed moto is not the one the patches were written for; nothing was patched."""

    def __init__(self, installed: str) -> None:
        super().__init__(
            f"the sandbox patches moto's internals as of moto {MOTO_VERSION}, but moto {installed} is "
            f"installed: pip install 'moto[server]=={MOTO_VERSION}' (or run `make venv` in the repository)"
        )
        self.installed = installed


def installed_moto_version() -> str | None:
    try:
        return importlib.metadata.version("moto")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_moto_version() -> None:
    """Raise MotoVersionError when another moto than `MOTO_VERSION` is installed.

    No moto at all is left to the import that needs it: the CLI turns that into the extra to install.
    """
    installed = installed_moto_version()
    if installed is not None and installed != MOTO_VERSION:
        raise MotoVersionError(installed)


@dataclass
class Runtime:
    """What the patched moto code needs from the running sandbox."""

    runner: Any  # LambdaRunner
    time_scale: float = 1.0
    async_retries: int = 2
    # At-least-once delivery made visible: each S3 notification and EventBridge-triggered invocation
    # is delivered this many times (AWS may deliver twice; 1 is the well-behaved default).
    delivery_copies: int = 1
    deliver_event: Callable[[Any, dict[str, Any], dict[str, Any]], None] | None = None
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(16, "t2v-async"))
    stats: dict[str, int] = field(default_factory=lambda: {"deliveries": 0, "duplicate_deliveries": 0})
    _stats_lock: threading.Lock = field(default_factory=threading.Lock)

    def count_delivery(self, copies: int) -> None:
        with self._stats_lock:
            self.stats["deliveries"] += copies
            self.stats["duplicate_deliveries"] += copies - 1

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds * self.time_scale))

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        def guarded() -> None:
            try:
                fn(*args)
            except Exception:
                LOG.exception("asynchronous delivery failed")

        self.executor.submit(guarded)


class _State:
    """Process-wide: moto's backends are per process, so is the sandbox runtime they call into."""

    runtime: Runtime | None = None
    installed = False


def activate(runtime: Runtime | None) -> None:
    _State.runtime = runtime


def active() -> Runtime | None:
    return _State.runtime


def install() -> None:
    """Install every patch (idempotent); MotoVersionError, before any patch, for another moto."""
    check_moto_version()
    with _install_lock:
        if _State.installed:
            return
        moto_atomic.install()
        _patch_lambda()
        _patch_s3_notifications()
        _patch_events()
        _patch_stepfunctions_time()
        patches_map.install()
        logging.getLogger(_MOTO_SFN_LOGGER).addFilter(quiet_state_failures)
        _State.installed = True


_MOTO_SFN_LOGGER = "moto.stepfunctions.parser.asl.component.eval_component"
_MAX_FAILURE_LOG_CHARS = 300


def quiet_state_failures(record: logging.LogRecord) -> bool:
    """moto logs every failure event of a state at ERROR, with its whole cause (kilobytes), even when
    the workflow's Catch handles it, as it does for every job that fails normally. Such a line is
    shortened and kept for debug logging only: the execution history holds the details."""
    message = record.getMessage()
    if not message.startswith("Exception=FailureEventException"):
        return True
    error = message.split("Error=", 1)[-1].split(",", 1)[0] if "Error=" in message else "?"
    record.msg = "state failure %s (the workflow's Retry/Catch decides; details in the execution history)"
    record.args = (error[:_MAX_FAILURE_LOG_CHARS],)
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return logging.getLogger("t2v_sandbox").isEnabledFor(logging.DEBUG)


def _require() -> Runtime:
    if _State.runtime is None:
        raise RuntimeError("t2v sandbox is not running")
    return _State.runtime


# --- Lambda: every invoke path (Invoke API, SFN lambda:invoke, S3, SNS, EventBridge) ends here.
def _invoke_async_with_retries(fn: Any, event: Any) -> None:
    from t2v_sandbox.lambda_runner import InjectedKillError

    runtime = _require()
    for attempt in range(runtime.async_retries + 1):
        try:
            _, errored = runtime.runner.invoke(fn, copy.deepcopy(event))
        except InjectedKillError:
            errored = True
        if not errored or attempt == runtime.async_retries:
            return
        # Lambda retries a failed asynchronous invocation twice, after about 1 and 2 minutes.
        runtime.sleep(_ASYNC_RETRY_DELAYS[min(attempt, len(_ASYNC_RETRY_DELAYS) - 1)])


def _decode_event(body: Any) -> Any:
    if isinstance(body, bytes):
        body = body.decode()
    if isinstance(body, str):
        try:
            return json.loads(body) if body else {}
        except json.JSONDecodeError:
            return body
    return body


def _service_exception(message: str) -> Exception:
    """What the Invoke API answers when the execution environment died under an invocation (HTTP 500)."""
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError("ServiceException", message)
    error.code = 500
    return error


def _patch_lambda() -> None:
    from moto.awslambda.models import LambdaFunction

    from t2v_sandbox.lambda_runner import InjectedKillError

    original_invoke = LambdaFunction.invoke
    original_invoke_lambda = LambdaFunction._invoke_lambda

    def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        if _State.runtime is None:
            return original_invoke_lambda(self, event)
        try:
            payload, errored = _State.runtime.runner.invoke(self, _decode_event(event))
        except InjectedKillError as exc:
            return json.dumps({"errorType": "Lambda.ServiceException", "errorMessage": str(exc)}), True, ""
        return payload, errored, ""

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        if _State.runtime is None:
            return original_invoke(self, body, request_headers, response_headers)
        headers = {str(k).lower(): v for k, v in dict(request_headers or {}).items()}
        event = _decode_event(body)
        if headers.get("x-amz-invocation-type") == "Event":
            _State.runtime.submit(_invoke_async_with_retries, self, event)
            return b""
        try:
            payload, errored = _State.runtime.runner.invoke(self, event)
        except InjectedKillError as exc:
            raise _service_exception(str(exc)) from None
        if errored:
            # Lambda marks handler exceptions, timeouts and crashes alike as "Unhandled".
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload.encode()

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
    LambdaFunction.invoke = invoke  # type: ignore[method-assign]


# --- S3 → Lambda notifications are asynchronous on AWS; moto runs them inside PutObject.
def _patch_s3_notifications() -> None:
    from moto.s3 import notifications

    original = notifications._invoke_awslambda
    original_event = notifications._get_s3_event

    def _get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        # S3 names the object's version in the event of a versioned bucket; moto 5.2.5 leaves it out.
        event: dict[str, Any] = original_event(event_name, bucket, key, notification_id)
        version = getattr(key, "version_id", None)
        if getattr(bucket, "is_versioned", False) and version and version != "null":
            for record in event["Records"]:
                record["s3"]["object"]["versionId"] = version
        return event

    notifications._get_s3_event = _get_s3_event

    def _invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
        if _State.runtime is None:
            original(account_id, event_body, fn_arn, region_name)
            return
        from moto.awslambda.utils import get_backend

        for record in event_body.get("Records", []):
            obj = record["s3"]["object"]
            # AWS form-encodes the key but keeps "/" (moto encodes it as %2F).
            obj["key"] = quote_plus(unquote_plus(obj["key"]), safe="/")
        fn = get_backend(account_id, region_name).get_function(fn_arn)
        copies = max(1, _State.runtime.delivery_copies)
        _State.runtime.count_delivery(copies)
        for _ in range(copies):
            _State.runtime.submit(_invoke_async_with_retries, fn, copy.deepcopy(event_body))

    notifications._invoke_awslambda = _invoke_awslambda


# --- EventBridge: moto cannot deliver to Lambda or Step Functions targets; the sandbox does.
def _patch_events() -> None:
    from moto.events.models import Rule

    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        runtime = _State.runtime
        if runtime is None or runtime.deliver_event is None:
            original(self, original_event, transform_input)
            return
        ours = [t for t in self.targets if t["Arn"].split(":")[2] in {"lambda", "states"}]
        if ours and self.state == "ENABLED":
            for target in ours:
                runtime.deliver_event(self, target, copy.deepcopy(original_event))
        rest = [t for t in self.targets if t not in ours]
        if rest:
            clone = copy.copy(self)
            clone.targets = rest
            original(clone, original_event, transform_input)

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


# --- Step Functions: Wait states, Retry intervals and task timeouts last `seconds * time_scale`.
class _ScaledTime:
    """Stands in for the `time` module inside moto's retrier, scaling only `sleep`."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        runtime = _State.runtime
        time.sleep(seconds * (runtime.time_scale if runtime else 1.0))


def _patch_stepfunctions_time() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    retrier_decl.time = _ScaledTime()  # type: ignore[attr-defined,assignment]  # its own `time` import, replaced

    def _timeout_body(self: Any, env: Any) -> None:
        # A task's TimeoutSeconds(Path) bounds both the task and a `.waitForTaskToken` wait for its
        # token (moto 5.2.5 supports both, and SendTaskSuccess through its parser backend); the wait
        # a push can cut short must shrink with the Wait states it replaces.
        seconds = self._eval_seconds(env=env)
        runtime = _State.runtime
        if runtime is not None and not self.is_default_value():
            seconds = seconds * runtime.time_scale
        env.stack.append(seconds)

    Timeout._eval_body = _timeout_body  # type: ignore[method-assign]

    def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        runtime = _State.runtime
        scaled = wait_seconds * (runtime.time_scale if runtime else 1.0)
        deadline = time.monotonic() + scaled
        # The program-state event also fires on unrelated changes: keep waiting while still running.
        while (remaining := deadline - time.monotonic()) > 0:
            if env.program_state_event.wait(remaining) and not env.is_running():
                return
            if env.program_state_event.is_set():
                time.sleep(min(remaining, 0.05))

    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
