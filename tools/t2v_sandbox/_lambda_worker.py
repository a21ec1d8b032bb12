"""A warm Lambda worker: imports one handler once, then serves invocations framed as length-prefixed JSON.

Run as a script (not as part of the t2v_sandbox package) so the handler's import path holds only the
function code and its layers. Requests arrive on stdin; replies go to the fd in T2V_WORKER_FD, because
stdout and stderr belong to the handler (they are the function's log file).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import struct
import sys
import time
import traceback
from typing import Any

_HEADER = struct.Struct(">I")
# Fault injection (sandbox `kill_rate`): die by SIGKILL at the k-th network send of this invocation,
# just before or just after it, so the handler's side effects may be half-done.
_KILL: dict[str, Any] = {"plan": None, "sends": 0}


def _install_kill_hook() -> None:
    original_sendall = socket.socket.sendall
    original_send = socket.socket.send

    def _check(before: bool) -> None:
        plan = _KILL["plan"]
        if plan is None:
            return
        if before:
            _KILL["sends"] += 1
        if _KILL["sends"] >= plan["after_sends"] and bool(plan["before"]) == before:
            os.kill(os.getpid(), signal.SIGKILL)

    def sendall(self: socket.socket, data: Any, *args: Any) -> None:
        _check(True)
        original_sendall(self, data, *args)
        _check(False)

    def send(self: socket.socket, data: Any, *args: Any) -> int:
        _check(True)
        sent = original_send(self, data, *args)
        _check(False)
        return sent

    socket.socket.sendall = sendall  # type: ignore[method-assign,assignment]
    socket.socket.send = send  # type: ignore[method-assign,assignment]


class LambdaContext:
    """The attributes and method a Python Lambda handler may use from its context argument."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.aws_request_id: str = request["request_id"]
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn: str = request["invoked_function_arn"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms: int = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message, "stackTrace": stack or []}


def _exception_error(exc: BaseException) -> dict[str, Any]:
    frames = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
    return _error(type(exc).__name__, str(exc), [f.rstrip("\n") for f in frames])


def _load_handler() -> tuple[Any, dict[str, Any] | None]:
    module_name, _, func_name = os.environ["_HANDLER"].rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:  # noqa: BLE001 - reported to the caller as Lambda does
        return None, _error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    handler = getattr(module, func_name, None)
    if handler is None:
        return None, _error(
            "Runtime.HandlerNotFound", f"Handler '{func_name}' missing on module '{module_name}'"
        )
    return handler, None


def _send(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    os.write(fd, _HEADER.pack(len(data)) + data)


def _receive() -> dict[str, Any] | None:
    header = sys.stdin.buffer.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (length,) = _HEADER.unpack(header)
    request: dict[str, Any] = json.loads(sys.stdin.buffer.read(length))
    return request


def _invoke(handler: Any, request: dict[str, Any]) -> dict[str, Any]:
    context = LambdaContext(request)
    _KILL["plan"], _KILL["sends"] = request.get("kill"), 0
    started = time.monotonic()
    print(f"START RequestId: {context.aws_request_id} Version: {context.function_version}", flush=True)
    try:
        result = handler(request["event"], context)
        try:
            reply = {"ok": True, "result": json.dumps(result)}
        except (TypeError, ValueError) as exc:
            reply = {
                "ok": False,
                "error": _error("Runtime.MarshalError", f"Unable to marshal response: {exc}"),
            }
    except Exception as exc:  # noqa: BLE001 - every handler exception becomes Lambda's error envelope
        error = _exception_error(exc)
        print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", file=sys.stderr, flush=True)
        traceback.print_exc()
        reply = {"ok": False, "error": error}
    _KILL["plan"] = None
    elapsed_ms = (time.monotonic() - started) * 1000
    print(f"END RequestId: {context.aws_request_id}", flush=True)
    print(f"REPORT RequestId: {context.aws_request_id}\tDuration: {elapsed_ms:.2f} ms", flush=True)
    return reply


def main() -> None:
    reply_fd = int(os.environ["T2V_WORKER_FD"])
    _install_kill_hook()
    handler, init_error = _load_handler()
    _send(reply_fd, {"ready": True, "init_error": init_error})
    while (request := _receive()) is not None:
        if init_error is not None:
            _send(reply_fd, {"ok": False, "error": init_error})
            continue
        _send(reply_fd, _invoke(handler, request))
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    main()
