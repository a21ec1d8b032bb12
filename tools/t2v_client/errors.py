"""How the API's answers become what a user sees: exit codes and one clear line per error."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # anything else: not found, conflict, a server error
    INVALID = 2  # HTTP 400, or a bad argument
    JOB_FAILED = 3  # the job ended FAILED, CANCELED or TIMED_OUT
    WAIT_TIMEOUT = 4  # gave up waiting (--timeout)
    UNREACHABLE = 5  # no endpoints file, connection refused


class CliError(Exception):
    """One line for stderr and the exit code it stands for."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for_http(status: int) -> ExitCode:
    if status < 400:
        return ExitCode.OK
    if status == 400:
        return ExitCode.INVALID
    return ExitCode.ERROR


def error_line(status: int, body: Any) -> str:
    """One clear line from an API error body `{"error": {"code", "message", "fields"}}`."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        message = body.get("message") if isinstance(body, dict) else None
        return f"HTTP {status}: {message or str(body)[:200] or 'no details'}"
    line = f"{error.get('code') or 'Error'}: {error.get('message') or 'no message'}"
    fields = error.get("fields") or []
    named = [f"{f.get('field')} ({f.get('message')})" for f in fields if isinstance(f, dict)]
    if named and not all(str(f.get("message")) in line for f in fields if isinstance(f, dict)):
        line += " [" + "; ".join(named) + "]"
    return f"HTTP {status} {line}"
