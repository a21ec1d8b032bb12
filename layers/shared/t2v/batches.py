"""Batches: a `.jsonl` prompt file run as one thing you can watch, cancel and collect (docs/batches.md).

Pure domain, no I/O: the batch's identity and statuses, reading a file into lines (each either a
request or the reason it is refused), when a whole file is refused, what a batch is expected to take,
and the shapes of its results and its announcement. The repository keeps the record
(`t2v.adapters.batches_repo`); the use cases run it (`t2v.usecases.batches`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from t2v.families import parse_request
from t2v.images import ImagePlace, check_places
from t2v.jobs import TERMINAL, JobRecord, JobStatus, derive_job_id
from t2v.jsontext import loads
from t2v.request import InvalidRequestError, RefusedRequest, bounded

# The most lines a batch may have. At a provider cap of 20 and about 3 minutes a video, 100,000 lines
# take about 10 days: within MAX_BATCH_SECONDS, and the Map run reads them as one JSONL object.
MAX_BATCH_LINES: Final = 100_000
# The read step holds the file and its rewritten copy in memory once (1,024 MB function): 100,000 lines
# of up to about 650 bytes each. A longer file is refused as a whole with its size.
MAX_BATCH_FILE_BYTES: Final = 64 * 1024 * 1024
# The longest batch accepted, at the learned cap: 14 days. Every limit a batch meets is longer: the
# batch execution's timeout (15 days), the jobs' TTL (90 days); its lines queue and run one window at
# a time, so their own limits (queue wait, deadline, presigned URLs) are those of single jobs.
MAX_BATCH_SECONDS: Final = 14 * 86400
# A file whose first lines are mostly refused is refused as a whole (one message, not a million).
SAMPLE_LINES: Final = 100
MOSTLY: Final = 0.5
MAX_ERROR_CHARS: Final = 1000
BATCH_PREFIX: Final = "batch#"


class BatchStatus(StrEnum):
    READING = "READING"  # the execution started; the file is not read yet
    RUNNING = "RUNNING"
    CANCELING = "CANCELING"  # canceled: no line starts; lines in flight are canceled or finish
    COMPLETED = "COMPLETED"  # every line ended (some may have failed)
    CANCELED = "CANCELED"
    REFUSED = "REFUSED"  # the file as a whole was refused: no line ran

    @property
    def is_terminal(self) -> bool:
        return self in {BatchStatus.COMPLETED, BatchStatus.CANCELED, BatchStatus.REFUSED}


def batch_key(batch_id: str) -> str:
    """The batch's item in the jobs table (t2v.adapters.batches_repo)."""
    return f"{BATCH_PREFIX}{batch_id}"


def derive_batch_id(bucket: str, key: str, version: str) -> str:
    """The batch of one uploaded object version: the same file notified twice is the same batch. Also
    a valid Step Functions execution name."""
    digest = hashlib.sha256("\x1f".join(("batch", bucket, key, version)).encode("utf-8")).hexdigest()
    return f"batch-{digest[:32]}"


def line_job_id(bucket: str, key: str, version: str, line: int) -> str:
    """The job of line `line` (1-based): the id intake gave a prompt file's line before batches."""
    return derive_job_id("s3", bucket, key, version, str(line))


@dataclass(frozen=True, slots=True)
class BatchFile:
    bucket: str
    key: str
    version: str  # versionId, else the ETag
    version_id: str | None = None  # what to read (None: the latest)

    @property
    def batch_id(self) -> str:
        return derive_batch_id(self.bucket, self.key, self.version)

    def job_id(self, line: int) -> str:
        return line_job_id(self.bucket, self.key, self.version, line)

    def as_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version": self.version,
            "version_id": self.version_id,
        }


@dataclass(frozen=True, slots=True)
class Line:
    """One non-blank line: its request as validated, or why it is refused."""

    line: int
    request: dict[str, Any] | None = None
    error: str | None = None
    seconds: int = 0  # billed seconds it asks for (0 when refused)
    # What is kept of a refused line's text (t2v.request.RefusedRequest: digest, size, first characters)
    refused: dict[str, Any] | None = None

    def item(self) -> dict[str, Any]:
        """What the Map run reads for this line (one JSON object per line of the lines file)."""
        if self.request is None:
            return {"line": self.line, "error": self.error, "refused": self.refused}
        return {"line": self.line, "request": self.request, "seconds": self.seconds}


@dataclass
class ReadFile:
    """What reading a file found: its lines, or why it is refused as a whole."""

    lines: list[Line] = field(default_factory=list)
    refusal: str | None = None

    @property
    def valid(self) -> int:
        return sum(1 for line in self.lines if line.request is not None)

    @property
    def refused(self) -> int:
        return len(self.lines) - self.valid

    @property
    def video_seconds(self) -> int:
        return sum(line.seconds for line in self.lines)

    @property
    def last_line(self) -> int:
        return self.lines[-1].line if self.lines else 0


def read_lines(
    key: str,
    data: bytes,
    defaults: dict[str, Any],
    *,
    place: ImagePlace | None = None,
    max_lines: int = MAX_BATCH_LINES,
    max_bytes: int = MAX_BATCH_FILE_BYTES,
) -> ReadFile:
    """Every non-blank line of a JSON Lines file, validated; or the file refused as a whole (too big,
    not UTF-8, no lines, too many lines, or its first lines mostly refused)."""
    if len(data) > max_bytes:
        return ReadFile(refusal=f"{key}: the file is {len(data)} bytes, over the {max_bytes}-byte limit")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return ReadFile(refusal=f"{key}: not UTF-8 text (invalid byte at offset {exc.start})")
    result = ReadFile()
    for number, raw in _numbered(text):
        if len(result.lines) >= max_lines:
            return ReadFile(
                refusal=f"{key}: more than {max_lines} requests (a batch takes at most {max_lines} lines)"
            )
        result.lines.append(_line(key, number, raw, defaults, place))
    if not result.lines:
        return ReadFile(refusal=f"{key}: no requests in the file")
    sample = result.lines[:SAMPLE_LINES]
    refused = [line for line in sample if line.request is None]
    if len(refused) > MOSTLY * len(sample):
        return ReadFile(
            lines=result.lines,
            refusal=f"{key}: {len(refused)} of the first {len(sample)} lines are refused, so the file is "
            f"refused as a whole; the first: {refused[0].error}",
        )
    return result


def _numbered(text: str) -> Iterator[tuple[int, str]]:
    # JSON Lines are separated by "\n" only: str.splitlines() would also split inside a JSON string
    # holding U+2028, U+0085 or a form feed, which json.dumps(ensure_ascii=False) writes raw.
    for number, line in enumerate((line.removesuffix("\r") for line in text.split("\n")), start=1):
        if line.strip():
            yield number, line


def _line(key: str, number: int, raw: str, defaults: dict[str, Any], place: ImagePlace | None) -> Line:
    where = f"{key} line {number}"
    try:
        value = loads(raw)
    except json.JSONDecodeError as exc:
        return Line(number, error=f"{where}: invalid JSON: {exc.msg}", refused=_kept(raw))
    except RecursionError:
        return Line(number, error=f"{where}: invalid JSON: nested too deeply", refused=_kept(raw))
    try:
        request = parse_request(value, defaults)
        check_places(request, place)
    except InvalidRequestError as exc:
        return Line(number, error=bounded(f"{where}: {exc}", MAX_ERROR_CHARS), refused=_kept(raw))
    return Line(
        number,
        request=request.model_dump(exclude_none=True, mode="json"),
        seconds=request.billed_seconds,
    )


def _kept(raw: str) -> dict[str, Any]:
    return RefusedRequest.of(raw).model_dump()


def lines_file(lines: Iterable[Line]) -> bytes:
    """The Map run's input: one JSON object per line, in file order."""
    return "".join(json.dumps(line.item(), ensure_ascii=False) + "\n" for line in lines).encode("utf-8")


def expected_seconds(job_seconds: list[float], slots: int) -> float:
    """How long the lines take when `slots` run at once: their total time spread over the slots,
    never less than the longest line."""
    if not job_seconds:
        return 0.0
    slots = max(1, slots)
    return max(sum(job_seconds) / slots, *job_seconds)


def too_long(seconds: float, *, valid: int, slots: int, limit: float = MAX_BATCH_SECONDS) -> str | None:
    if seconds <= limit:
        return None
    return (
        f"the batch's {valid} requests would take about {math.ceil(seconds / 3600)} h at {slots} running at "
        f"once (the provider's learned cap), over the {round(limit / 3600)} h a batch may take: split the file"
    )


class BatchRecord(BaseModel):
    """One batch as the repository stores it (item `batch#<id>` of the jobs table)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    batch_id: str
    status: BatchStatus
    owner: str | None = None
    source: str = "s3"
    file: dict[str, Any] = Field(default_factory=dict)
    notify_lines: bool = False
    execution: str | None = None
    total: int = 0
    valid: int = 0
    refused: int = 0
    last_line: int = 0
    video_seconds: int = 0
    reserved_seconds: int = 0
    released_seconds: int = 0
    budget_day: str | None = None
    expected_seconds: float | None = None
    counts: dict[str, int] = Field(default_factory=dict)  # ended lines per terminal job status
    started: int = 0  # lines whose job was recorded
    active: list[str] = Field(default_factory=list)  # job ids recorded and not ended (bounded: one window)
    error_code: str | None = None
    error_message: str | None = None
    results_key: str | None = None
    summary_key: str | None = None
    results_bucket: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime | None = None
    started_at: AwareDatetime | None = None  # read and accepted
    canceled_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    notified_at: AwareDatetime | None = None
    event_sent_at: AwareDatetime | None = None

    @property
    def batch_file(self) -> BatchFile:
        f = self.file
        return BatchFile(str(f["bucket"]), str(f["key"]), str(f["version"]), f.get("version_id"))

    @property
    def ended(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in TERMINAL)

    @property
    def cancellable(self) -> bool:
        return self.status in {BatchStatus.READING, BatchStatus.RUNNING}

    def progress(self) -> float:
        if self.status.is_terminal:
            return 1.0
        return round(self.ended / self.total, 4) if self.total else 0.0


@dataclass(frozen=True, slots=True)
class ResultLine:
    line: int
    job_id: str | None
    status: str
    error: dict[str, Any] | None
    video_key: str | None
    billed_seconds: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "job_id": self.job_id,
            "status": self.status,
            "error": self.error,
            "video_key": self.video_key,
            "billed_seconds": self.billed_seconds,
        }


NOT_STARTED: Final = {"code": "BatchCanceled", "message": "the batch was canceled before this line started"}
NEVER_STARTED: Final = {
    "code": "LineNotStarted",
    "message": "the batch's workflow could not record this line (its Map child failed every retry)",
}


def result_line(line: Line, job_id: str, job: JobRecord | None, *, canceled: bool = False) -> ResultLine:
    """What became of one input line. A refused line with no record yet still gets its error; a valid
    one without a job was never started: canceled (`canceled`), else its group failed to record."""
    if job is None:
        if line.request is None:
            return ResultLine(line.line, None, JobStatus.FAILED.value, _refused(line), None, 0)
        if canceled:
            return ResultLine(line.line, None, JobStatus.CANCELED.value, dict(NOT_STARTED), None, 0)
        return ResultLine(line.line, None, JobStatus.FAILED.value, dict(NEVER_STARTED), None, 0)
    error = None
    if job.status != JobStatus.SUCCEEDED:
        error = {"code": job.error_code, "message": job.error_message}
    billed = 0
    if job.billed_seconds and job.refunded_at is None and job.status in TERMINAL:
        billed = job.billed_seconds
    return ResultLine(
        line.line,
        job.job_id,
        job.status.value,
        error,
        job.s3_key if job.status == JobStatus.SUCCEEDED else None,
        billed,
    )


def _refused(line: Line) -> dict[str, Any]:
    return {"code": InvalidRequestError.code, "message": line.error}


def counts_of(results: Iterable[ResultLine]) -> dict[str, int]:
    counts = {status.value: 0 for status in TERMINAL}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts


def batch_message(batch: BatchRecord) -> dict[str, Any]:
    """The batch's one announcement (SNS and EventBridge `Video Batch Ended`)."""
    return {
        "batch_id": batch.batch_id,
        "notification_id": f"{batch.batch_id}/{batch.status.value}",
        "status": batch.status.value,
        "owner": batch.owner,
        "source": batch.source,
        "file": {k: batch.file.get(k) for k in ("bucket", "key", "version")},
        "lines": {"total": batch.total, "valid": batch.valid, "refused": batch.refused},
        "counts": dict(batch.counts),
        "video_seconds": batch.video_seconds,
        "results": results_of(batch),
        "error": error_of(batch),
        "created_at": _iso(batch.created_at),
        "finished_at": _iso(batch.finished_at),
    }


def results_of(batch: BatchRecord) -> dict[str, Any] | None:
    if not batch.results_key:
        return None
    return {"bucket": batch.results_bucket, "key": batch.results_key, "summary_key": batch.summary_key}


def error_of(batch: BatchRecord) -> dict[str, Any] | None:
    if not batch.error_code:
        return None
    return {"code": batch.error_code, "message": batch.error_message}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
