"""Front doors that start jobs from S3 prompt files and EventBridge events.

Parsing is pure: any bytes in, a list of (line, request or error) out, never a crash. Starting
jobs goes through the `Starter` port so it is tested against moto and in-memory fakes alike.

A `.txt` or `.json` prompt file keeps one promise: exactly one job that ends, announced once. A
`.jsonl` file is a batch (`t2v.usecases.batches`): intake only opens it, and the batch state machine
reads and runs its lines on a Distributed Map. What is kept of a refused request is bounded
(`RefusedRequest`: digest, size, prefix), so no record or message outgrows DynamoDB, SNS or
EventBridge; one file's failure never stops the others (the invocation fails at the end, and its retry
finds the files done before as duplicates).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, S3Event

from t2v.contract import Ended, ExecutionInput
from t2v.errors import PipelineError
from t2v.families import parse_request
from t2v.images import ImagePlace, check_places
from t2v.jobs import JobStatus, derive_job_id
from t2v.jsontext import loads
from t2v.request import FieldError, InvalidRequestError, RefusedRequest, RequestBase, bounded
from t2v.usecases.announce import FirstRecord

LOG = logging.getLogger(__name__)
MAX_PROMPT_FILE_BYTES = 1024 * 1024
MAX_JSONL_LINES = 1000  # parse_prompt_file's own cap (a batch's lines are read by t2v.batches)
MAX_ERROR_CHARS: Final = 1000
# The event an earlier release's intake handed the rest of a .jsonl file on with: one still in flight
# during an update opens the file's batch (its lines' job ids are the same, so none runs twice).
CONTINUATION_KEY: Final = "t2v_continuation"


class PromptFileIncompleteError(PipelineError):
    """Some prompt files could not be started or reported; the rest were. Lambda retries the
    invocation, which finds the files done before as duplicates."""

    code = "PromptFileIncomplete"
    retryable = True


@dataclass(frozen=True, slots=True)
class ParsedItem:
    line: int  # 1-based line for .jsonl, 0 for whole-file formats
    request: RequestBase | None
    raw: str  # the text the request came from: a line, or the whole file (never stored as is)
    error: str | None = None


def parse_prompt_file(  # noqa: PLR0911 - one early answer per kind of file
    key: str,
    data: bytes,
    defaults: dict[str, Any],
    *,
    max_lines: int = MAX_JSONL_LINES,
    place: ImagePlace | None = None,
) -> list[ParsedItem]:
    """Turn a prompt file into requests, one item per promise. Errors name the file, line and field."""
    if len(data) > MAX_PROMPT_FILE_BYTES:
        return [
            ParsedItem(
                0, None, "", f"{key}: file is {len(data)} bytes, over the {MAX_PROMPT_FILE_BYTES}-byte cap"
            )
        ]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [ParsedItem(0, None, "", f"{key}: not UTF-8 (invalid byte at offset {exc.start})")]
    lower = key.lower()
    if lower.endswith(".txt"):
        return [_validate(key, 0, {"prompt": text.strip()}, text, defaults, place=place)]
    if lower.endswith(".json"):
        try:
            raw = loads(text)
        except json.JSONDecodeError as exc:
            return [
                ParsedItem(
                    0, None, text, f"{key}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
                )
            ]
        return [_validate(key, 0, raw, text, defaults, place=place)]
    if lower.endswith(".jsonl"):
        return _parse_jsonl(key, text, defaults, max_lines, place)
    return [ParsedItem(0, None, "", f"{key}: unsupported file type (use .txt, .json or .jsonl)")]


def _parse_jsonl(
    key: str, text: str, defaults: dict[str, Any], max_lines: int, place: ImagePlace | None
) -> list[ParsedItem]:
    items: list[ParsedItem] = []
    # JSON Lines are separated by "\n" only: str.splitlines() would also split inside a JSON string
    # holding U+2028, U+0085 or a form feed, which json.dumps(ensure_ascii=False) writes raw.
    for number, line in enumerate((line.removesuffix("\r") for line in text.split("\n")), start=1):
        if not line.strip():
            continue
        if len(items) >= max_lines:  # each line over the cap is refused on its own, never dropped
            items.append(
                ParsedItem(number, None, line, f"{key} line {number}: over {max_lines} requests per file")
            )
            continue
        try:
            raw = loads(line)
        except json.JSONDecodeError as exc:
            items.append(ParsedItem(number, None, line, f"{key} line {number}: invalid JSON: {exc.msg}"))
            continue
        items.append(_validate(key, number, raw, line, defaults, place=place))
    if not items:
        items.append(ParsedItem(0, None, text, f"{key}: no requests in the file"))
    return items


def _validate(
    key: str, line: int, raw: Any, text: str, defaults: dict[str, Any], *, place: ImagePlace | None
) -> ParsedItem:
    where = f"{key} line {line}" if line else key
    try:
        return ParsedItem(line, _parse(raw, defaults, place), text)
    except InvalidRequestError as exc:
        return ParsedItem(line, None, text, f"{where}: {exc}")


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
    images: ImagePlace | None = None  # where requests may name s3:// images
    # Opens the batch of a .jsonl file (t2v.usecases.batches.open_batch); its id.
    open_batch: Callable[[PromptFile], str] | None = None
    # Whose jobs the file's and the events' lines are (PromptJobOwner), refused lines included.
    owner: str | None = None


@dataclass
class IntakeReport:
    started: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # files whose start or report raised: retried
    batches: list[str] = field(default_factory=list)  # batches opened (.jsonl files)

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "failed": self.failed,
            "batches": self.batches,
        }


@dataclass(frozen=True, slots=True)
class PromptFile:
    """One uploaded object: where to read it, and the version its job ids derive from."""

    bucket: str
    key: str
    version: str  # versionId, else the ETag: part of every job id of the file
    version_id: str | None  # what to read (None: the latest)

    @property
    def origin(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "version": self.version}


def _execution(
    job_id: str, request: RequestBase, source: str, origin: dict[str, Any], delay: int
) -> ExecutionInput:
    return ExecutionInput(
        job_id=job_id,
        request=request.model_dump(exclude_none=True),
        source=source,
        origin=origin,
        start_delay_seconds=delay,
    )


def _reject(
    deps: IntakeDeps, job_id: str, *, message: str, raw: str, source: str, origin: dict[str, Any]
) -> None:
    """A FAILED job and its announcement, keeping a digest and a prefix of the request, never all of it."""
    deps.reject(
        job_id,
        Ended(
            status=JobStatus.FAILED, code=InvalidRequestError.code, message=bounded(message, MAX_ERROR_CHARS)
        ),
        FirstRecord(
            request=RefusedRequest.of(raw).model_dump(), source=source, origin=origin, owner=deps.owner
        ),
    )


def prompt_files(event: dict[str, Any], input_prefix: str) -> list[PromptFile]:
    files = []
    for record in S3Event(event).records:
        obj = record.s3.get_object
        key = unquote_plus(obj.key)  # S3 sends keys URL-encoded
        if key.startswith(input_prefix):
            version = obj.version_id or obj.etag or ""
            files.append(PromptFile(record.s3.bucket.name, key, version, obj.version_id))
    return files


def handle_s3_records(event: dict[str, Any], deps: IntakeDeps) -> IntakeReport:
    """Every prompt file in the event: a .jsonl opens its batch, a .txt or .json starts its one job."""
    report = IntakeReport()
    for file in prompt_files(event, deps.input_prefix):
        try:
            _process_file(file, deps, report)
        except Exception:  # one file's failure never stops the others; the invocation fails at the end
            LOG.exception("prompt file failed", extra={"key": file.key})
            report.failed.append(file.key)
    if report.failed:
        raise PromptFileIncompleteError(
            f"{len(report.failed)} prompt file(s) could not be started or reported and will be retried: "
            + ", ".join(report.failed[:5])
        )
    return report


def handle_continuation(event: dict[str, Any], deps: IntakeDeps) -> IntakeReport:
    """The rest of a .jsonl file that an earlier release's intake handed on: its batch runs it."""
    report = IntakeReport()
    body = event.get(CONTINUATION_KEY)
    try:
        file = PromptFile(str(body["bucket"]), str(body["key"]), str(body["version"]), body.get("version_id"))  # type: ignore[index,union-attr]
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidRequestError(
            [FieldError("continuation", f"malformed continuation event: {exc}")]
        ) from None
    if file.key.startswith(deps.input_prefix):
        _process_file(file, deps, report)
    return report


def _process_file(file: PromptFile, deps: IntakeDeps, report: IntakeReport) -> None:
    if file.key.lower().endswith(".jsonl") and deps.open_batch is not None:
        report.batches.append(deps.open_batch(file))
        return
    data = deps.read_object(file.bucket, file.key, file.version_id)
    for item in parse_prompt_file(file.key, data, deps.defaults, place=deps.images):
        job_id = derive_job_id("s3", file.bucket, file.key, file.version, str(item.line))
        origin = {**file.origin, "line": item.line}
        if item.request is None:
            message = item.error or "invalid request"
            _reject(deps, job_id, message=message, raw=item.raw, source="s3", origin=origin)
            report.rejected.append(job_id)
        else:
            _start(deps, report, _execution(job_id, item.request, "s3", origin, 0))


def handle_eventbridge(event: dict[str, Any], deps: IntakeDeps) -> IntakeReport:
    """`Video Generation Requested`: the detail is the request; the event id gives idempotency."""
    report = IntakeReport()
    received = EventBridgeEvent(event)
    event_id = received.get("id")  # .get_id would raise KeyError on an event without one
    job_id = derive_job_id("eventbridge", str(event_id))
    detail = received.get("detail")
    origin = {"event_id": event_id, "source": received.get("source"), "time": received.get("time")}
    raw = detail.get("request", detail) if isinstance(detail, dict) else detail
    try:
        request = _parse(raw, deps.defaults, deps.images)
    except InvalidRequestError as exc:
        _reject(
            deps,
            job_id,
            message=f"event {event_id}: {exc}",
            raw=_as_text(raw),
            source="eventbridge",
            origin=origin,
        )
        report.rejected.append(job_id)
        return report
    _start(deps, report, _execution(job_id, request, "eventbridge", origin, 0))
    return report


def _parse(raw: Any, defaults: dict[str, Any], place: ImagePlace | None) -> RequestBase:
    """A request of a prompt file or an event: owned by PromptJobOwner, so it may name any image
    under the input-images prefix (never outside it)."""
    request = parse_request(raw, defaults)
    check_places(request, place)
    return request


def _as_text(raw: Any) -> str:
    try:
        return json.dumps(raw, sort_keys=True, default=str)  # ASCII: a lone surrogate stays escaped
    except (RecursionError, ValueError):
        return repr(raw)[:MAX_ERROR_CHARS]


def _start(deps: IntakeDeps, report: IntakeReport, execution: ExecutionInput) -> None:
    """Record, then start. Both are idempotent, so a crash in between is healed by the redelivery."""
    new = deps.record(execution)
    started = deps.starter.start(execution.job_id, execution.model_dump(mode="json"))
    (report.started if new and started else report.duplicates).append(execution.job_id)
