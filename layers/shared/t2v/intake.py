"""Front doors that start jobs from S3 prompt files and EventBridge events.

Parsing is pure: any bytes in, a list of (line, request or error) out, never a crash. Starting
jobs goes through the `Starter` port so it is tested against moto and in-memory fakes alike.

A prompt file keeps one promise per line (every non-blank line of a `.jsonl`, the whole of a `.txt`
or `.json`): exactly one job that ends, announced once. What is kept of a refused request is bounded
(`RefusedRequest`: digest, size, prefix), so no record or message outgrows DynamoDB, SNS or
EventBridge; one line's failure never stops the others (the invocation fails at the end, and its
retry finds the lines done before as duplicates); and an invocation that runs short of time or has
done its share of lines hands the rest of the file on to a new invocation (`Continuation`).
"""

from __future__ import annotations

import json
import logging
import math
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
MAX_JSONL_LINES = 1000
# Jobs of one .jsonl file start this many per second (each Step Functions execution waits its turn
# in a Wait state), so a batch of hundreds never floods the provider with creates.
JSONL_STARTS_PER_SECOND = 2
# A refused line costs about ten AWS calls (record, announce on SNS and EventBridge, marks): with
# these bounds one invocation stays far inside the function's timeout, however slow the calls.
LINES_PER_INVOCATION: Final = 250
HANDOFF_MARGIN_SECONDS: Final = 20.0
MAX_ERROR_CHARS: Final = 1000
CONTINUATION_KEY: Final = "t2v_continuation"


class PromptFileIncompleteError(PipelineError):
    """Some lines of a prompt file could not be started or reported; the rest were. Lambda retries the
    invocation, which finds the lines done before as duplicates."""

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
    # Invokes intake again, asynchronously, with a continuation event (see `Continuation`).
    hand_on: Callable[[dict[str, Any]], None] | None = None
    lines_per_invocation: int = LINES_PER_INVOCATION
    handoff_margin_seconds: float = HANDOFF_MARGIN_SECONDS
    max_lines: int = MAX_JSONL_LINES


@dataclass
class IntakeReport:
    started: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # lines whose start or report raised: retried
    handed_on: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "failed": self.failed,
            "handed_on": self.handed_on,
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


@dataclass(frozen=True, slots=True)
class Continuation:
    """The rest of a prompt file, from `from_line` on, for a new invocation (`{CONTINUATION_KEY: ...}`)."""

    file: PromptFile
    from_line: int
    hops: int = 1

    def event(self) -> dict[str, Any]:
        f = self.file
        return {
            CONTINUATION_KEY: {
                "bucket": f.bucket,
                "key": f.key,
                "version": f.version,
                "version_id": f.version_id,
                "from_line": self.from_line,
                "hops": self.hops,
            }
        }

    @classmethod
    def of(cls, event: dict[str, Any]) -> Continuation:
        body = event[CONTINUATION_KEY]
        try:
            file = PromptFile(
                str(body["bucket"]), str(body["key"]), str(body["version"]), body.get("version_id")
            )
            return cls(file, int(body["from_line"]), int(body.get("hops", 1)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidRequestError(
                [FieldError("continuation", f"malformed continuation event: {exc}")]
            ) from None


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
        FirstRecord(request=RefusedRequest.of(raw).model_dump(), source=source, origin=origin),
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


def handle_s3_records(
    event: dict[str, Any], deps: IntakeDeps, *, time_left: Callable[[], float] = lambda: math.inf
) -> IntakeReport:
    """Every line of every file in the event; what this invocation has no time for is handed on."""
    report = IntakeReport()
    pending = [Continuation(f, 0, hops=0) for f in prompt_files(event, deps.input_prefix)]
    _run(pending, deps, report, time_left)
    return report


def handle_continuation(
    event: dict[str, Any], deps: IntakeDeps, *, time_left: Callable[[], float] = lambda: math.inf
) -> IntakeReport:
    """The rest of a prompt file that an earlier invocation handed on."""
    report = IntakeReport()
    continuation = Continuation.of(event)
    if continuation.file.key.startswith(deps.input_prefix):
        _run([continuation], deps, report, time_left)
    return report


@dataclass
class _Share:
    """What one invocation may still do: a number of lines, while time is left. It always does at
    least one line, so a chain of hand-offs ends with the file however little time each one has."""

    lines: int
    margin_seconds: float
    time_left: Callable[[], float]
    done: int = 0

    def spent(self) -> bool:
        return self.done > 0 and (self.done >= self.lines or self.time_left() < self.margin_seconds)


def _run(
    pending: list[Continuation], deps: IntakeDeps, report: IntakeReport, time_left: Callable[[], float]
) -> None:
    share = _Share(deps.lines_per_invocation, deps.handoff_margin_seconds, time_left)
    for n, part in enumerate(pending):
        rest = _process_file(part, deps, report, share)
        if rest is not None:  # out of time or of this invocation's share: hand on what is left
            for later in [rest, *pending[n + 1 :]]:
                _hand_on(later, deps, report)
            break
    if report.failed:
        raise PromptFileIncompleteError(
            f"{len(report.failed)} line(s) could not be started or reported and will be retried: "
            + ", ".join(report.failed[:5])
        )


def _hand_on(part: Continuation, deps: IntakeDeps, report: IntakeReport) -> None:
    if deps.hand_on is None:
        raise PipelineError("intake cannot hand the rest of a prompt file on (no hand_on port)")
    event = Continuation(part.file, part.from_line, part.hops + 1).event()
    deps.hand_on(event)
    report.handed_on.append(event[CONTINUATION_KEY])


def _process_file(
    part: Continuation, deps: IntakeDeps, report: IntakeReport, share: _Share
) -> Continuation | None:
    """Start or refuse each line from `part.from_line` on; the continuation of what is left, if any."""
    file = part.file
    data = deps.read_object(file.bucket, file.key, file.version_id)
    valid_index = 0
    for item in parse_prompt_file(file.key, data, deps.defaults, max_lines=deps.max_lines, place=deps.images):
        if item.line >= part.from_line and share.spent():
            return Continuation(file, item.line, part.hops)
        if item.request is not None:
            valid_index += 1  # counted over the whole file: the same start delays in every part
        if item.line < part.from_line:
            continue
        share.done += 1
        job_id = derive_job_id("s3", file.bucket, file.key, file.version, str(item.line))
        origin = {**file.origin, "line": item.line}
        try:
            if item.request is None:
                message = item.error or "invalid request"
                _reject(deps, job_id, message=message, raw=item.raw, source="s3", origin=origin)
                report.rejected.append(job_id)
            else:
                # The file's valid requests start JSONL_STARTS_PER_SECOND a second, in line order.
                delay = (valid_index - 1) // JSONL_STARTS_PER_SECOND
                _start(deps, report, _execution(job_id, item.request, "s3", origin, delay))
        except Exception:  # one line's failure never stops the others; the invocation fails at the end
            LOG.exception(
                "prompt file line failed", extra={"key": file.key, "line": item.line, "job_id": job_id}
            )
            report.failed.append(job_id)
    return None


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
