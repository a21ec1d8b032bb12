"""Front doors that start jobs from S3 prompt files and EventBridge events.

Parsing is pure: any bytes in, a list of (line, request or error) out, never a crash. Starting
jobs goes through the `Starter` port so it is tested against moto and in-memory fakes alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote_plus

from t2v.contract import Ended, ExecutionInput
from t2v.jobs import JobStatus, derive_job_id
from t2v.jsontext import loads
from t2v.request import InvalidRequestError, VideoRequest, parse_request
from t2v.usecases.announce import FirstRecord

MAX_PROMPT_FILE_BYTES = 1024 * 1024
MAX_JSONL_LINES = 1000
# Jobs of one .jsonl file start this many per second (each Step Functions execution waits its turn
# in a Wait state), so a batch of hundreds never floods the provider with creates.
JSONL_STARTS_PER_SECOND = 2


@dataclass(frozen=True, slots=True)
class ParsedItem:
    line: int  # 1-based line for .jsonl, 0 for whole-file formats
    request: VideoRequest | None
    raw: Any
    error: str | None = None


def parse_prompt_file(key: str, data: bytes, defaults: dict[str, Any]) -> list[ParsedItem]:  # noqa: PLR0911
    """Turn a prompt file into requests. Errors name the file, the line and the field."""
    if len(data) > MAX_PROMPT_FILE_BYTES:
        return [
            ParsedItem(
                0, None, None, f"{key}: file is {len(data)} bytes, over the {MAX_PROMPT_FILE_BYTES}-byte cap"
            )
        ]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [ParsedItem(0, None, None, f"{key}: not UTF-8 (invalid byte at offset {exc.start})")]
    lower = key.lower()
    if lower.endswith(".txt"):
        return [_validate(key, 0, {"prompt": text.strip()}, defaults)]
    if lower.endswith(".json"):
        try:
            raw = loads(text)
        except json.JSONDecodeError as exc:
            return [
                ParsedItem(
                    0, None, None, f"{key}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
                )
            ]
        return [_validate(key, 0, raw, defaults)]
    if lower.endswith(".jsonl"):
        return _parse_jsonl(key, text, defaults)
    return [ParsedItem(0, None, None, f"{key}: unsupported file type (use .txt, .json or .jsonl)")]


def _parse_jsonl(key: str, text: str, defaults: dict[str, Any]) -> list[ParsedItem]:
    items: list[ParsedItem] = []
    # JSON Lines are separated by "\n" only: str.splitlines() would also split inside a JSON string
    # holding U+2028, U+0085 or a form feed, which json.dumps(ensure_ascii=False) writes raw.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(items) >= MAX_JSONL_LINES:
            items.append(
                ParsedItem(
                    number, None, None, f"{key} line {number}: over {MAX_JSONL_LINES} requests per file"
                )
            )
            break
        try:
            raw = loads(line)
        except json.JSONDecodeError as exc:
            items.append(
                ParsedItem(number, None, line[:500], f"{key} line {number}: invalid JSON: {exc.msg}")
            )
            continue
        items.append(_validate(key, number, raw, defaults))
    if not items:
        items.append(ParsedItem(0, None, None, f"{key}: no requests in the file"))
    return items


def _validate(key: str, line: int, raw: Any, defaults: dict[str, Any]) -> ParsedItem:
    where = f"{key} line {line}" if line else key
    try:
        return ParsedItem(line, parse_request(raw, defaults), raw)
    except InvalidRequestError as exc:
        return ParsedItem(line, None, raw, f"{where}: {exc}")


class Starter(Protocol):
    def start(self, job_id: str, payload: dict[str, Any]) -> bool:
        """Start the workflow for the job; False when an execution with that name already exists."""
        ...


class Recorder(Protocol):
    def __call__(self, execution: ExecutionInput) -> bool:
        """Record the ACCEPTED job; False when it was recorded before (a repeated trigger)."""
        ...


@dataclass
class IntakeDeps:
    starter: Starter
    record: Recorder
    reject: Callable[[str, Ended, FirstRecord], Any]  # ends the job FAILED and announces it (end_job)
    read_object: Callable[[str, str, str | None], bytes]
    defaults: dict[str, Any]
    input_prefix: str = "prompts/"


@dataclass
class IntakeReport:
    started: list[str]
    duplicates: list[str]
    rejected: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"started": self.started, "duplicates": self.duplicates, "rejected": self.rejected}


def _execution(
    job_id: str, request: VideoRequest, source: str, origin: dict[str, Any], delay: int
) -> ExecutionInput:
    return ExecutionInput(
        job_id=job_id,
        request=request.model_dump(exclude_none=True),
        source=source,
        origin=origin,
        start_delay_seconds=delay,
    )


def _reject(
    deps: IntakeDeps, job_id: str, *, message: str, raw: Any, source: str, origin: dict[str, Any]
) -> None:
    request = raw if isinstance(raw, dict) else {"raw": str(raw)[:4096]} if raw is not None else {}
    deps.reject(
        job_id,
        Ended(status=JobStatus.FAILED, code=InvalidRequestError.code, message=message),
        FirstRecord(request=request, source=source, origin=origin),
    )


def handle_s3_records(event: dict[str, Any], deps: IntakeDeps) -> IntakeReport:
    report = IntakeReport([], [], [])
    for record in event.get("Records", []):
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])  # S3 sends keys URL-encoded
        if not key.startswith(deps.input_prefix):
            continue
        version = record["s3"]["object"].get("versionId") or record["s3"]["object"].get("eTag") or ""
        data = deps.read_object(bucket, key, record["s3"]["object"].get("versionId"))
        origin_base = {"bucket": bucket, "key": key, "version": version}
        valid_index = 0
        for item in parse_prompt_file(key, data, deps.defaults):
            job_id = derive_job_id("s3", bucket, key, version, str(item.line))
            origin = {**origin_base, "line": item.line}
            if item.request is None:
                _reject(
                    deps,
                    job_id,
                    message=item.error or "invalid request",
                    raw=item.raw,
                    source="s3",
                    origin=origin,
                )
                report.rejected.append(job_id)
                continue
            delay = valid_index // JSONL_STARTS_PER_SECOND
            valid_index += 1
            _start(deps, report, _execution(job_id, item.request, "s3", origin, delay))
    return report


def handle_eventbridge(event: dict[str, Any], deps: IntakeDeps) -> IntakeReport:
    """`Video Generation Requested`: the detail is the request; the event id gives idempotency."""
    report = IntakeReport([], [], [])
    job_id = derive_job_id("eventbridge", str(event.get("id")))
    detail = event.get("detail")
    origin = {"event_id": event.get("id"), "source": event.get("source"), "time": event.get("time")}
    raw = detail.get("request", detail) if isinstance(detail, dict) else detail
    try:
        request = parse_request(raw, deps.defaults)
    except InvalidRequestError as exc:
        _reject(
            deps,
            job_id,
            message=f"event {event.get('id')}: {exc}",
            raw=raw,
            source="eventbridge",
            origin=origin,
        )
        report.rejected.append(job_id)
        return report
    _start(deps, report, _execution(job_id, request, "eventbridge", origin, 0))
    return report


def _start(deps: IntakeDeps, report: IntakeReport, execution: ExecutionInput) -> None:
    """Record, then start. Both are idempotent, so a crash in between is healed by the redelivery."""
    new = deps.record(execution)
    started = deps.starter.start(execution.job_id, execution.model_dump(mode="json"))
    (report.started if new and started else report.duplicates).append(execution.job_id)
