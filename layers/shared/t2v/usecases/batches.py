"""Batches: open one at a door, read its file, record and start its lines, cancel it, collect it.

The batch workflow (`statemachine/batch.asl.json`) calls `read_batch`, `record_lines` (one Distributed
Map child per group of lines) and `collect_batch`; the doors call `open_batch`; the API reads, lists
and cancels. Each step is idempotent: the Map may run a child twice, a Lambda may be retried, and a
step may crash between two writes; what a step writes is keyed by the batch and the line.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from t2v.batches import (
    BatchFile,
    BatchRecord,
    BatchStatus,
    Line,
    ReadFile,
    batch_message,
    counts_of,
    lines_file,
    read_lines,
    result_line,
    too_long,
)
from t2v.billing import Caps
from t2v.contract import Ended, ExecutionInput
from t2v.errors import (
    BatchNotCancelableError,
    BatchNotFoundError,
    BatchRunningError,
    BudgetExceededError,
    CreateInProgressError,
    InvalidCursorError,
    PipelineError,
)
from t2v.images import ImagePlace
from t2v.jobs import JobRecord, JobStatus
from t2v.request import FieldError, InvalidRequestError, RefusedRequest
from t2v.times import iso, utcnow
from t2v.usecases.announce import AnnounceDeps, end_job

LOG = logging.getLogger(__name__)
REFUSED_CODE: Final = "BatchRefused"
BATCH_CANCELED: Final = Ended(
    status=JobStatus.CANCELED,
    code="BatchCanceled",
    message="the batch was canceled before this line's task was created",
)
# How long a cancel acts on the lines in flight before it answers; the rest end by themselves (their
# creates are refused once the batch is CANCELING).
CANCEL_SECONDS: Final = 20.0
COLLECT_WAIT_SECONDS: Final = 30


class BatchStore(Protocol):
    """The batch records (t2v.adapters.batches_repo.BatchesRepository)."""

    def get(self, batch_id: str) -> BatchRecord | None: ...
    def list_for(
        self, owner: str | None, *, limit: int, cursor: str | None
    ) -> tuple[list[BatchRecord], str | None]: ...
    def jobs(self, job_ids: list[str]) -> dict[str, JobRecord]: ...
    def create_if_absent(
        self,
        batch_id: str,
        *,
        owner: str | None,
        source: str,
        file: dict[str, Any],
        notify_lines: bool,
        execution: str | None,
        now: datetime,
    ) -> tuple[BatchRecord, bool]: ...
    def accept(
        self,
        batch_id: str,
        *,
        fields: dict[str, Any],
        day: str,
        seconds: int,
        caps: Caps | None,
        now: datetime,
    ) -> BatchRecord: ...
    def set_status(
        self,
        batch_id: str,
        status: BatchStatus,
        *,
        now: datetime,
        allowed: tuple[BatchStatus, ...],
        fields: dict[str, Any] | None = None,
    ) -> tuple[bool, BatchRecord | None]: ...
    def add_active(self, batch_id: str, job_ids: list[str], *, now: datetime) -> None: ...
    def forget_active(self, batch_id: str, job_ids: list[str]) -> None: ...
    def settle_line(self, job: JobRecord) -> None: ...
    def finish(
        self,
        batch: BatchRecord,
        status: BatchStatus,
        *,
        counts: dict[str, int],
        release: int,
        fields: dict[str, Any],
        now: datetime,
    ) -> BatchRecord: ...
    def mark(self, batch_id: str, field: str, *, now: datetime) -> bool: ...


class ObjectStore(Protocol):
    def version_of(
        self, *, bucket: str, key: str, version: str | None = None
    ) -> tuple[str | None, str] | None: ...
    def read_capped(self, *, bucket: str, key: str, version: str | None, cap: int) -> bytes: ...
    def put_bytes(self, *, bucket: str, key: str, data: bytes, content_type: str) -> None: ...
    def put_json(self, *, bucket: str, key: str, data: dict[str, Any]) -> None: ...
    def presign(self, *, bucket: str, key: str, expires_in: int = 900) -> str: ...


class Starter(Protocol):
    def start(self, job_id: str, payload: dict[str, Any]) -> bool: ...


class Announcer(Protocol):
    def publish(self, message: dict[str, Any]) -> str: ...
    def put_event(self, message: dict[str, Any]) -> None: ...


@dataclass
class BatchDeps:
    batches: BatchStore
    announce: AnnounceDeps  # ending lines (quietly) and canceling them
    store: ObjectStore
    notifier: Announcer  # the batch's own announcement
    starter: Starter  # the batch state machine
    bucket: str  # where results are written
    results_prefix: str = "results/"
    defaults: dict[str, Any] | None = None
    place: ImagePlace | None = None
    caps: Caps | None = None  # the daily budgets (None: off); the owner is filled in per batch
    max_batch_seconds: float = 14 * 86400
    # (lines) -> (expected seconds, slots): the lines' time at the learned cap
    estimate: Callable[[list[Line]], tuple[float, int]] = lambda lines: (0.0, 1)
    cancel_job: Callable[[JobRecord], None] | None = None  # cancels one line as a user's DELETE would
    clock: Callable[[], datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    max_file_bytes: int = 64 * 1024 * 1024
    notify_lines: bool = False  # the stack's default for a batch's lines (BatchLineNotifications)

    def lines_key(self, batch_id: str) -> str:
        return f"{self.results_prefix}{batch_id}.lines.jsonl"

    def results_key(self, batch_id: str) -> str:
        return f"{self.results_prefix}{batch_id}.jsonl"

    def summary_key(self, batch_id: str) -> str:
        return f"{self.results_prefix}{batch_id}.summary.json"


# -- the doors ----------------------------------------------------------------------------------
def open_batch(
    file: BatchFile, *, owner: str | None, source: str, notify_lines: bool, deps: BatchDeps
) -> BatchRecord:
    """Record the batch (READING) and start its workflow, both keyed by the batch id: a repeated S3
    notification or POST finds the same batch and starts nothing new."""
    batch_id = file.batch_id
    batch, _ = deps.batches.create_if_absent(
        batch_id,
        owner=owner,
        source=source,
        file=file.as_dict(),
        notify_lines=notify_lines,
        execution=batch_id,
        now=deps.clock(),
    )
    deps.starter.start(batch_id, {"batch_id": batch_id})
    return batch


def open_api_batch(
    key: str,
    *,
    version: str | None,
    notify_lines: bool,
    principal: str,
    folder: str | None,
    deps: BatchDeps,
) -> BatchRecord:
    """`POST /batches`: a .jsonl the caller put in its own folder (`folder`) of the stack's bucket."""
    if not key.lower().endswith(".jsonl"):
        raise InvalidRequestError([FieldError("key", "must name a .jsonl file (one request per line)")])
    if folder is None or not key.startswith(folder) or ".." in key.split("/"):
        raise InvalidRequestError(
            [
                FieldError(
                    "key",
                    f"must be under your own folder of the bucket, {folder} (upload the file there first)",
                )
            ]
        )
    found = deps.store.version_of(bucket=deps.bucket, key=key, version=version)
    if found is None:
        raise InvalidRequestError(
            [
                FieldError(
                    "key", f"no object s3://{deps.bucket}/{key}" + (f" version {version}" if version else "")
                )
            ]
        )
    version_id, etag = found
    file = BatchFile(deps.bucket, key, version_id or etag, version_id)
    return open_batch(file, owner=principal, source="api", notify_lines=notify_lines, deps=deps)


# -- the workflow's steps -----------------------------------------------------------------------
def read_batch(batch_id: str, deps: BatchDeps) -> dict[str, Any]:
    """Read and check the whole file once; write the Map's input; accept (reserving its seconds) or
    refuse the batch as a whole with one announcement. `{"accepted": bool, "lines": {bucket, key}}`."""
    batch = _batch(batch_id, deps)
    if batch.status in {BatchStatus.REFUSED, BatchStatus.COMPLETED, BatchStatus.CANCELED}:
        if batch.status == BatchStatus.REFUSED:
            _announce(batch, deps)
        return {"accepted": batch.status != BatchStatus.REFUSED, "lines": _lines_at(batch_id, deps)}
    file = batch.batch_file
    data = deps.store.read_capped(
        bucket=file.bucket, key=file.key, version=file.version_id, cap=deps.max_file_bytes
    )
    read = read_lines(file.key, data, deps.defaults or {}, place=deps.place, max_bytes=deps.max_file_bytes)
    numbers = _numbers(read)
    if read.refusal is not None:
        return _refuse(batch, read.refusal, numbers, deps)
    seconds, slots = deps.estimate(read.lines)
    numbers["expected_seconds"] = round(seconds, 1)
    if (reason := too_long(seconds, valid=read.valid, slots=slots, limit=deps.max_batch_seconds)) is not None:
        return _refuse(batch, f"{file.key}: {reason}", numbers, deps)
    deps.store.put_bytes(
        bucket=deps.bucket,
        key=deps.lines_key(batch_id),
        data=lines_file(read.lines),
        content_type="application/x-ndjson",
    )
    if batch.status == BatchStatus.READING:
        now = deps.clock()
        caps = None if deps.caps is None else Caps(deps.caps.account, deps.caps.caller, batch.owner)
        try:
            # As it stands: CANCELING when a cancel landed since it was read (nothing accepted then)
            batch = deps.batches.accept(
                batch_id,
                fields=numbers,
                day=now.strftime("%Y-%m-%d"),
                seconds=read.video_seconds,
                caps=caps,
                now=now,
            )
        except BudgetExceededError as exc:
            return _refuse(batch, f"{file.key}: {exc}", numbers, deps)
    if batch.status == BatchStatus.CANCELING and not batch.total:  # canceled before it was read
        deps.batches.set_status(
            batch_id,
            BatchStatus.CANCELING,
            now=deps.clock(),
            allowed=(BatchStatus.CANCELING,),
            fields=numbers,
        )
    return {"accepted": True, "lines": _lines_at(batch_id, deps)}


def _numbers(read: ReadFile) -> dict[str, Any]:
    return {
        "total": len(read.lines),
        "valid": read.valid,
        "refused": read.refused,
        "last_line": read.last_line,
        "video_seconds": read.video_seconds,
    }


def _lines_at(batch_id: str, deps: BatchDeps) -> dict[str, str]:
    return {"bucket": deps.bucket, "key": deps.lines_key(batch_id)}


def _refuse(batch: BatchRecord, reason: str, numbers: dict[str, Any], deps: BatchDeps) -> dict[str, Any]:
    fields = {**numbers, "error_code": REFUSED_CODE, "error_message": reason[:2000]}
    _, current = deps.batches.set_status(
        batch.batch_id,
        BatchStatus.REFUSED,
        now=deps.clock(),
        allowed=(BatchStatus.READING, BatchStatus.CANCELING),
        fields=fields,
    )
    if current is not None and current.status == BatchStatus.REFUSED:
        _announce(current, deps)
    return {"accepted": False, "lines": _lines_at(batch.batch_id, deps)}


def record_lines(batch_id: str, items: list[dict[str, Any]], deps: BatchDeps) -> dict[str, Any]:
    """One Map child's lines: a FAILED record for each refused line (not announced on its own), an
    ACCEPTED job for each valid one (its seconds reserved by the batch), and the executions to start.
    A batch no longer RUNNING starts nothing; a cancel that lands meanwhile ends the new jobs CANCELED."""
    batch = _batch(batch_id, deps)
    if batch.status != BatchStatus.RUNNING:
        return {"starts": []}
    file = batch.batch_file
    lines = [_item_line(item) for item in items]
    ids = [file.job_id(line.line) for line in lines]
    # A child run again (a retried step, the Map's redrive) finds some lines ended: they stay out of
    # the active set, so that their end is not counted again.
    ended = {i for i, job in deps.batches.jobs(ids).items() if job.status.is_terminal}
    fresh = [i for i in ids if i not in ended]
    deps.batches.add_active(batch_id, fresh, now=deps.clock())  # before the jobs: an end always finds its id
    starts: list[dict[str, Any]] = []
    for line, job_id in zip(lines, ids, strict=True):
        if job_id in ended:
            continue
        job = _record_line(batch, line, job_id, deps)
        if line.request is None:
            if not job.status.is_terminal:
                end_job(job_id, _refusal(line), deps.announce, seen=job)
            continue
        if not job.status.is_terminal:
            starts.append(
                {"job_id": job_id, "input": _execution(batch, line, job_id).model_dump(mode="json")}
            )
    now_batch = _batch(batch_id, deps)
    if now_batch.status != BatchStatus.RUNNING:  # canceled while these lines were recorded
        for start in starts:
            end_job(
                start["job_id"],
                BATCH_CANCELED,
                deps.announce,
                expect={"task_id": None, "create_claimed_at": None},
            )
        return {"starts": []}
    return {"starts": starts}


def _item_line(item: dict[str, Any]) -> Line:
    try:
        return Line(
            int(item["line"]),
            item.get("request"),
            item.get("error"),
            int(item.get("seconds") or 0),
            item.get("refused"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRequestError(
            [FieldError("items", f"not a line of a batch's lines file: {exc}")]
        ) from None


def _refusal(line: Line) -> Ended:
    return Ended(status=JobStatus.FAILED, code=InvalidRequestError.code, message=str(line.error)[:1000])


def _origin(batch: BatchRecord, line: Line) -> dict[str, Any]:
    file = batch.batch_file
    return {
        "bucket": file.bucket,
        "key": file.key,
        "version": file.version,
        "line": line.line,
        "batch_id": batch.batch_id,
    }


def _record_line(batch: BatchRecord, line: Line, job_id: str, deps: BatchDeps) -> JobRecord:
    now = deps.clock()
    extra: dict[str, Any] = {
        "batch_id": batch.batch_id,
        "batch_line": line.line,
        "quiet": not batch.notify_lines,
    }
    if line.request is not None and batch.reserved_seconds and batch.budget_day and line.seconds:
        # Charged already: the batch reserved its lines' seconds when it was accepted.
        extra.update({"budget_day": batch.budget_day, "billed_seconds": line.seconds})
        if batch.owner and deps.caps is not None:
            extra["budget_owner"] = batch.owner
    # A refused line keeps what intake kept of a refused request: its digest, size and first characters
    request = (
        line.request if line.request is not None else (line.refused or RefusedRequest.of("").model_dump())
    )
    job, _ = deps.announce.repo.create_if_absent(
        job_id,
        request=request,
        source=batch.source,
        origin=_origin(batch, line),
        now=now,
        deadline_at=now + timedelta(days=1),
        owner=batch.owner,
        extra=extra,
    )
    return job


def _execution(batch: BatchRecord, line: Line, job_id: str) -> ExecutionInput:
    return ExecutionInput(
        job_id=job_id, request=dict(line.request or {}), source=batch.source, origin=_origin(batch, line)
    )


def collect_batch(batch_id: str, deps: BatchDeps) -> dict[str, Any]:
    """Once no line is active: the results file (one line per input line, in order), the summary,
    the exact counts, the unused reserved seconds given back, the batch ended and announced once.
    `{"done": False, "wait_seconds": n}` while lines are still running."""
    batch = _batch(batch_id, deps)
    if batch.status.is_terminal:
        _announce(batch, deps)
        return {"done": True, "status": batch.status.value}
    if batch.active:
        open_jobs = deps.batches.jobs(list(batch.active))
        still = [j for j in open_jobs.values() if not j.status.is_terminal]
        if still:
            return {"done": False, "wait_seconds": COLLECT_WAIT_SECONDS, "active": len(still)}
        # Ended but not counted (a crash between the end and its count), or never recorded.
        for job in open_jobs.values():
            deps.batches.settle_line(job)
        deps.batches.forget_active(batch_id, [i for i in batch.active if i not in open_jobs])
    file = batch.batch_file
    raw = deps.store.read_capped(bucket=deps.bucket, key=deps.lines_key(batch_id), version=None, cap=1 << 31)
    lines = [_item_line(json.loads(text)) for text in raw.decode("utf-8").splitlines() if text.strip()]
    jobs = deps.batches.jobs([file.job_id(line.line) for line in lines])
    canceled = batch.status == BatchStatus.CANCELING
    results = [
        result_line(line, file.job_id(line.line), jobs.get(file.job_id(line.line)), canceled=canceled)
        for line in lines
    ]
    counts = counts_of(results)
    body = "".join(json.dumps(r.as_dict(), ensure_ascii=False) + "\n" for r in results).encode("utf-8")
    deps.store.put_bytes(
        bucket=deps.bucket, key=deps.results_key(batch_id), data=body, content_type="application/x-ndjson"
    )
    charged = sum(j.billed_seconds or 0 for j in jobs.values() if j.budget_day and j.batch_id == batch_id)
    release = max(0, batch.reserved_seconds - charged)
    status = BatchStatus.CANCELED if batch.status == BatchStatus.CANCELING else BatchStatus.COMPLETED
    summary = {
        "batch_id": batch_id,
        "status": status.value,
        "file": {k: batch.file.get(k) for k in ("bucket", "key", "version")},
        "owner": batch.owner,
        "lines": {"total": batch.total, "valid": batch.valid, "refused": batch.refused},
        "counts": counts,
        "video_seconds": batch.video_seconds,
        "billed_seconds": sum(r.billed_seconds for r in results),
        "reserved_seconds": batch.reserved_seconds,
        "released_seconds": release,
        "results_key": deps.results_key(batch_id),
        "created_at": iso(batch.created_at),
        "finished_at": iso(deps.clock()),
    }
    deps.store.put_json(bucket=deps.bucket, key=deps.summary_key(batch_id), data=summary)
    ended = deps.batches.finish(
        batch,
        status,
        counts=counts,
        release=release,
        fields={
            "results_bucket": deps.bucket,
            "results_key": deps.results_key(batch_id),
            "summary_key": deps.summary_key(batch_id),
        },
        now=deps.clock(),
    )
    _announce(ended, deps)
    return {"done": True, "status": ended.status.value}


def _announce(batch: BatchRecord, deps: BatchDeps) -> None:
    """The batch's one announcement: SNS then EventBridge, each marked once it went out. A crash
    between a publish and its mark sends a second copy with the same `notification_id`."""
    message = batch_message(batch)
    now = deps.clock()
    if batch.notified_at is None:
        deps.notifier.publish(message)
        deps.batches.mark(batch.batch_id, "notified_at", now=now)
    if batch.event_sent_at is None:
        deps.notifier.put_event(message)
        deps.batches.mark(batch.batch_id, "event_sent_at", now=now)


# -- the API's use cases ------------------------------------------------------------------------
def _batch(batch_id: str, deps: BatchDeps) -> BatchRecord:
    batch = deps.batches.get(batch_id)
    if batch is None:
        raise BatchNotFoundError(f"no batch {batch_id}")
    return batch


def owned_batch(batch_id: str, principal: str, admin: bool, deps: BatchDeps) -> BatchRecord:
    """Another caller's batch is answered like a missing one."""
    batch = deps.batches.get(batch_id)
    if batch is None or not (admin or batch.owner == principal):
        raise BatchNotFoundError(f"no batch {batch_id}")
    return batch


def cancel_batch(batch_id: str, principal: str, admin: bool, deps: BatchDeps) -> BatchRecord:
    """Stop a batch: from the answer on no line of it creates a task (its lines' creates are claimed
    only while it is RUNNING). Lines queued for capacity end CANCELED, PENDING tasks are canceled at
    the provider, running ones finish and are delivered. The Map then drains, starting nothing, and
    the batch ends CANCELED with its results."""
    batch = owned_batch(batch_id, principal, admin, deps)
    moved, current = deps.batches.set_status(
        batch_id, BatchStatus.CANCELING, now=deps.clock(), allowed=(BatchStatus.READING, BatchStatus.RUNNING)
    )
    if not moved:
        current = current or batch
        if current.status in {BatchStatus.CANCELING, BatchStatus.CANCELED}:
            return current
        raise BatchNotCancelableError(f"batch {batch_id} already ended {current.status.value}")
    assert current is not None
    if deps.cancel_job is not None and current.active:
        _cancel_lines(list(current.active), deps)
    return deps.batches.get(batch_id) or current


def _cancel_lines(job_ids: list[str], deps: BatchDeps) -> None:
    """Cancel the lines in flight. A line whose create is on its way (claimed before the batch's
    cancel was written) is waited for, so that the answer comes after every task of the batch was
    made: then it is canceled while PENDING. Bounded by CANCEL_SECONDS; what is left ends by itself
    (RUNNING lines finish and are delivered)."""
    assert deps.cancel_job is not None
    give_up = deps.monotonic() + CANCEL_SECONDS
    pending = [job for job in deps.batches.jobs(job_ids).values() if job.status.is_cancelable]
    while pending and deps.monotonic() < give_up:
        again: list[str] = []
        for job in pending:
            try:
                deps.cancel_job(job)
            except CreateInProgressError:
                again.append(job.job_id)
            except PipelineError as exc:  # e.g. its task left PENDING meanwhile: it runs and is delivered
                LOG.info("batch line not canceled", extra={"job_id": job.job_id, "reason": str(exc)})
        if not again:
            return
        deps.sleep(0.25)
        pending = [job for job in deps.batches.jobs(again).values() if job.status.is_cancelable]


def list_batches(
    principal: str, deps: BatchDeps, *, limit: int, cursor: str | None
) -> tuple[list[BatchRecord], str | None]:
    try:
        return deps.batches.list_for(principal, limit=limit, cursor=cursor)
    except InvalidCursorError as exc:
        raise InvalidRequestError([FieldError("cursor", str(exc))]) from None


def batch_jobs(
    batch: BatchRecord, deps: BatchDeps, *, limit: int, cursor: str | None
) -> tuple[list[JobRecord], str | None]:
    """The batch's jobs in line order, `limit` at a time; the cursor is the last line number read."""
    after = int(cursor) if cursor is not None and cursor.isdigit() and len(cursor) < 10 else -1
    if cursor is None:
        after = 0
    if not 0 <= after <= batch.last_line:  # a line number the listing gave: never read past the file
        raise InvalidRequestError([FieldError("cursor", "not a cursor this API gave")])
    file = batch.batch_file
    found: list[JobRecord] = []
    line = after
    while line < batch.last_line and len(found) < limit:
        numbers = list(range(line + 1, min(batch.last_line, line + 100) + 1))
        jobs = deps.batches.jobs([file.job_id(n) for n in numbers])
        for n in numbers:
            job = jobs.get(file.job_id(n))
            line = n
            if job is not None:
                found.append(job)
                if len(found) == limit:
                    break
    return found, (str(line) if line < batch.last_line else None)


def results_links(batch: BatchRecord, deps: BatchDeps, *, seconds: int = 3600) -> dict[str, Any]:
    if not batch.status.is_terminal or not batch.results_key:
        if batch.status == BatchStatus.REFUSED:
            raise BatchRunningError(
                f"batch {batch.batch_id} was refused: it has no results ({batch.error_message})"
            )
        raise BatchRunningError(
            f"batch {batch.batch_id} is {batch.status.value}: its results are written when it ends"
        )
    bucket = batch.results_bucket or deps.bucket
    summary: dict[str, Any] = {}
    try:
        summary = json.loads(
            deps.store.read_capped(bucket=bucket, key=str(batch.summary_key), version=None, cap=1 << 20)
        )
    except (ValueError, PipelineError):
        summary = {}
    return {
        "batch_id": batch.batch_id,
        "status": batch.status.value,
        "results_url": deps.store.presign(bucket=bucket, key=batch.results_key, expires_in=seconds),
        "summary_url": deps.store.presign(bucket=bucket, key=str(batch.summary_key), expires_in=seconds),
        "summary": summary,
    }
