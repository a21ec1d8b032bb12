"""Batches in the soak: every `.jsonl` the soak writes is a batch (docs/batches.md), judged here.

A batch's lines are planned jobs like any other (their status is judged by the soak's Judge from the
provider's record), but quiet: no line is announced on its own. What this module judges is the batch
as a whole, from what a user can see and from the provider's own record:

- it ended (COMPLETED, CANCELED, REFUSED: the one the plan implies) and was announced exactly once
  (SNS and EventBridge `Video Batch Ended`; no quiet line announced);
- its results file has exactly one line per non-blank input line, each saying what its job's record says;
- no line made more than one provider task; no line of a canceled batch made a task after the cancel
  answered (the emulator's receipt time of the create against the DELETE's answer, one machine's clock).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from t2v_sandbox.user_sandbox import UserSandbox

ENDED: Final = frozenset({"COMPLETED", "CANCELED", "REFUSED"})
JOB_TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"})
BATCH_DETAIL_TYPE: Final = "Video Batch Ended"
BAD_KEYS: Final = (
    "batch_result_missing",  # an input line with no line in the results file (or no results at all)
    "batch_result_doubled",  # a line listed twice in the results file (or one no input line has)
    "batch_line_ran_twice",  # more than one provider task for one batch line
    "batch_line_after_cancel",  # a canceled batch's line made a provider task after the cancel answered
    "batch_not_ended",  # a batch not COMPLETED, CANCELED or REFUSED once the soak settled
    "batch_announcements_wrong",  # a batch not announced exactly once, or a quiet line announced
)
# The kinds of batches the soak makes: prompt files through S3 (`put_object` and `t2v upload`), the
# hostile files, garbage refused as a whole, and one POST /v1/batches that a user cancels midway.
KINDS: Final = ("s3", "upload", "hostile", "garbage", "cancel")


@dataclass
class PlannedBatch:
    name: str
    kind: str
    lines: dict[int, str | None]  # every non-blank line: the planned job's prompt (None: a refused line)
    expect: str = "COMPLETED"
    bucket: str = ""
    key: str = ""
    version: str = ""
    batch_id: str = ""
    job_ids: dict[int, str] = field(default_factory=dict)
    submit_error: str | None = None
    # Every DELETE's answer (the cancel batch): (HTTP status or None for a lost answer, detail).
    cancel_answers: list[tuple[int | None, str]] = field(default_factory=list)
    canceled_at: float | None = None  # time.time() when a DELETE first answered 200
    redelivered: int = 0  # S3 notifications of the same object version sent again by the soak

    def place(self, bucket: str, key: str, version: str) -> None:
        from t2v.batches import derive_batch_id, line_job_id

        self.bucket, self.key, self.version = bucket, key, version
        self.batch_id = derive_batch_id(bucket, key, version)
        self.job_ids = {n: line_job_id(bucket, key, version, n) for n in self.lines}


class BatchBook:
    """The batches the soak's threads write, in the order they were placed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches: list[PlannedBatch] = []

    def add(self, batch: PlannedBatch) -> PlannedBatch:
        with self._lock:
            self.batches.append(batch)
        return batch

    def placed(self) -> list[PlannedBatch]:
        with self._lock:
            return [b for b in self.batches if b.batch_id]


def garbage_files(run: str, seed: int) -> list[tuple[PlannedBatch, bytes]]:
    """Files that are no JSON Lines at all: random bytes (not UTF-8) and prose (every line refused).
    Each is one REFUSED batch: one announcement, no job."""
    rng = random.Random(seed)  # noqa: S311 - test data, not crypto
    noise = bytes(rng.randrange(256) for _ in range(4096))
    noise = b"\xff\xfe" + noise  # surely not UTF-8
    prose = (
        b"Dear team,\n\nplease make a video of a fox at dawn.\nThanks!\n\n"
        b"P.S. the kite one too, and something with the moon.\n"
    )
    files = []
    for name, body in ((f"{run}-noise.jsonl", noise), (f"{run}-prose.jsonl", prose)):
        text = body.decode("utf-8", errors="replace")
        lines: dict[int, str | None] = {
            n: None for n, line in enumerate(text.split("\n"), start=1) if line.strip()
        }
        files.append((PlannedBatch(name, "garbage", lines, expect="REFUSED"), body))
    return files


def s3_event(bucket: str, key: str, version: str | None, size: int) -> dict[str, Any]:
    """The S3 `ObjectCreated:Put` notification of one object version, as S3 sends it to intake."""
    from urllib.parse import quote_plus

    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "eTag": "0" * 32}
    if version:
        obj["versionId"] = version
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "eventName": "ObjectCreated:Put",
                "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket}, "object": obj},
            }
        ]
    }


def redeliver(sb: UserSandbox, batch: PlannedBatch, size: int) -> None:
    """The S3 notification of this batch's object version once more, later (the sandbox already sends
    every notification twice at once): the same version must stay one batch."""
    event = s3_event(batch.bucket, batch.key, batch.version, size)
    fn = sb.physical_id("IntakeFunction")
    try:
        sb.client("lambda").invoke(FunctionName=fn, InvocationType="Event", Payload=json.dumps(event))
    finally:
        batch.redelivered += 1


def batch_records(sb: UserSandbox, batches: list[PlannedBatch]) -> dict[str, dict[str, Any]]:
    from t2v.adapters.jobs_table import plain

    table = sb.session.resource("dynamodb", endpoint_url=sb.moto_url).Table(sb.outputs["JobsTableName"])
    found: dict[str, dict[str, Any]] = {}
    for batch in batches:
        item = table.get_item(Key={"pk": f"batch#{batch.batch_id}"}, ConsistentRead=True).get("Item")
        if item:
            found[batch.batch_id] = plain(item)
    return found


def unended(sb: UserSandbox, batches: list[PlannedBatch]) -> list[str]:
    """The planned batches not (yet) ended."""
    records = batch_records(sb, batches)
    return [b.batch_id for b in batches if str((records.get(b.batch_id) or {}).get("status")) not in ENDED]


def running_batch_executions(sb: UserSandbox) -> list[str]:
    arn = sb.outputs.get("BatchStateMachineArn")
    if not arn:
        return []
    sfn = sb.client("stepfunctions")
    names: list[str] = []
    kwargs: dict[str, Any] = {"stateMachineArn": arn, "statusFilter": "RUNNING"}
    while True:
        page = sfn.list_executions(**kwargs)
        names.extend(e["name"] for e in page["executions"])
        if not page.get("nextToken"):
            return names
        kwargs["nextToken"] = page["nextToken"]


@dataclass
class BatchVerdict:
    counts: Counter[str]
    problems: list[str]
    summary: dict[str, Any]


def s3_reader(sb: UserSandbox) -> Callable[[str, str], bytes | None]:
    """An object's bytes, or None when there is none."""
    s3 = sb.client("s3")

    def read(bucket: str, key: str) -> bytes | None:
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception:  # noqa: BLE001 - a missing object is a finding, not a crash
            return None
        return body

    return read


@dataclass
class BatchJudge:
    records: dict[str, dict[str, Any]]  # the batch records by batch id (`batch_records`)
    read: Callable[[str, str], bytes | None]  # (bucket, key) -> the object's bytes, None if absent
    batches: list[PlannedBatch]
    messages: list[dict[str, Any]]  # every SNS message the subscriber got
    events: list[dict[str, Any]]  # every EventBridge event the tap got (completion and batch)
    jobs: dict[str, dict[str, Any]]  # every job record by job id
    tasks: dict[str, list[dict[str, Any]]]  # the pipeline's own provider tasks by prompt
    creates: dict[str, float]  # task id -> when the emulator received the create that made it
    batch_kills: int = 0  # BatchFunction workers killed (each may send one more copy of an announcement)
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def bad(self, key: str, batch: PlannedBatch, problem: str, count: int = 1) -> None:
        self.counts[key] += count
        self.problems.append(f"{batch.kind} batch {batch.name} ({batch.batch_id}): {problem}")

    def run(self) -> BatchVerdict:
        records = self.records
        for batch in self.batches:
            if batch.submit_error:
                self.bad("batch_not_ended", batch, f"never opened: {batch.submit_error}")
                continue
            record = records.get(batch.batch_id)
            self.check_record(batch, record)
            self.check_announcements(batch, record)
            if record is not None and record["status"] in {"COMPLETED", "CANCELED"}:
                self.check_results(batch, record)
            if record is not None and record["status"] == "REFUSED":
                ran = [n for n, job_id in batch.job_ids.items() if job_id in self.jobs]
                if ran:
                    self.bad("wrong_status", batch, f"REFUSED, yet lines {ran[:5]} have jobs")
            self.check_tasks(batch)
        announced = [m for m in self.messages if m["message"].get("batch_id")]
        statuses = Counter(str((records.get(b.batch_id) or {}).get("status")) for b in self.batches)
        summary = {
            "batches": len(self.batches),
            "batch_lines": sum(len(b.lines) for b in self.batches),
            "batch_announcements": len(announced),
            "batch_events": sum(1 for e in self.events if e.get("detail-type") == BATCH_DETAIL_TYPE),
            "batch_statuses": dict(statuses),
            "batch_redeliveries": sum(b.redelivered for b in self.batches),
            "batch_cancels": [
                {
                    "status": b.cancel_answers[-1][0] if b.cancel_answers else None,
                    "ended": statuses_of(records, b),
                }
                for b in self.batches
                if b.kind == "cancel"
            ],
            "batch_kills": self.batch_kills,
            "redelivered_batch_announcements": self.counts["redelivered_batch_announcements"],
        }
        for key in BAD_KEYS:
            summary[key] = self.counts[key]
        return BatchVerdict(self.counts, self.problems, summary)

    def check_record(self, batch: PlannedBatch, record: dict[str, Any] | None) -> None:
        if record is None:
            self.bad("batch_not_ended", batch, "no batch record")
            return
        status = str(record["status"])
        if status not in ENDED:
            self.bad("batch_not_ended", batch, f"still {status}")
            return
        expect = {batch.expect}
        if batch.kind == "cancel":
            if batch.canceled_at is not None:
                expect = {"CANCELED"}
            elif any(s is None or s >= 500 for s, _ in batch.cancel_answers):
                expect = {"CANCELED", "COMPLETED"}  # a lost answer may have canceled it
        if status not in expect:
            self.bad("wrong_status", batch, f"ended {status}, expected {' or '.join(sorted(expect))}")

    def check_announcements(self, batch: PlannedBatch, record: dict[str, Any] | None) -> None:
        """One SNS message and one `Video Batch Ended` event, with the record's status; copies with the
        same notification_id are the announcer's crash window (one per killed batch worker at most);
        no line's own announcement."""
        notes = self.announced(batch)
        events = [
            e["detail"]
            for e in self.events
            if e.get("detail-type") == BATCH_DETAIL_TYPE and e["detail"].get("batch_id") == batch.batch_id
        ]
        for what, seen in (("SNS announcements", notes), ("batch events", events)):
            ids = sorted({str(n.get("notification_id")) for n in seen})
            if len(ids) != 1:
                self.bad("batch_announcements_wrong", batch, f"{len(seen)} {what} with ids {ids}")
            elif len(seen) > 1:
                if len(seen) - 1 <= self.batch_kills:
                    self.counts["redelivered_batch_announcements"] += len(seen) - 1
                else:
                    self.bad("batch_announcements_wrong", batch, f"{len(seen)} copies of its {what}")
            if record is not None and any(n.get("status") != record["status"] for n in seen):
                self.bad("wrong_status", batch, f"{what} say {[n.get('status') for n in seen]}")
        quiet = set(batch.job_ids.values())
        loud = Counter(
            str(m["message"]["job_id"]) for m in self.messages if m["message"].get("job_id") in quiet
        )
        loud.update(str(e["detail"]["job_id"]) for e in self.events if e["detail"].get("job_id") in quiet)
        if loud:
            self.bad("batch_announcements_wrong", batch, f"quiet lines announced: {dict(loud)}", len(loud))

    def announced(self, batch: PlannedBatch) -> list[dict[str, Any]]:
        return [m["message"] for m in self.messages if m["message"].get("batch_id") == batch.batch_id]

    def check_results(self, batch: PlannedBatch, record: dict[str, Any]) -> None:
        """Exactly one results line per non-blank input line, each saying what its job's record says."""
        bucket = str(record.get("results_bucket") or batch.bucket)
        body = self.read(bucket, str(record.get("results_key")))
        try:
            results = [
                json.loads(text) for text in (body or b"").decode("utf-8").splitlines() if text.strip()
            ]
        except ValueError as exc:
            self.bad("batch_result_missing", batch, f"results file unreadable: {exc}", len(batch.lines))
            return
        if body is None:
            self.bad("batch_result_missing", batch, "no results file", len(batch.lines))
            return
        if self.read(bucket, str(record.get("summary_key"))) is None:
            self.bad("batch_result_missing", batch, "no summary file")
        seen = Counter(int(r["line"]) for r in results)
        missing = sorted(set(batch.lines) - set(seen))
        if missing:
            self.bad("batch_result_missing", batch, f"lines {missing[:10]} not in the results", len(missing))
        doubled = {n: c for n, c in seen.items() if c > 1 or n not in batch.lines}
        if doubled:
            self.bad("batch_result_doubled", batch, f"results lines {doubled}", sum(doubled.values()))
        if [int(r["line"]) for r in results] != sorted(seen.elements()):
            self.bad("batch_result_doubled", batch, "results not in line order")
        self.check_counts(batch, record, results)
        for result in results:
            n = int(result["line"])
            job = self.jobs.get(batch.job_ids.get(n, ""))
            if job is None:
                if result.get("job_id") is not None or result["status"] not in {"FAILED", "CANCELED"}:
                    self.bad("wrong_status", batch, f"line {n}: {result} but no job")
                continue
            if result.get("job_id") != job["pk"] or result["status"] != job["status"]:
                self.bad(
                    "wrong_status", batch, f"line {n}: results say {result['status']}, job {job['status']}"
                )
            if job.get("batch_id") != batch.batch_id or int(job.get("batch_line") or 0) != n:
                self.bad("wrong_status", batch, f"line {n}: job {job['pk']} names another batch line")

    def check_counts(
        self, batch: PlannedBatch, record: dict[str, Any], results: list[dict[str, Any]]
    ) -> None:
        """The record's counts (and the announcement's) are the results file's, with no line still active."""
        tally = Counter(str(r["status"]) for r in results)
        counted = {
            k.removeprefix("ended_"): int(v) for k, v in record.items() if k.startswith("ended_") and v
        }
        if counted != dict(tally) or record.get("active"):
            self.bad(
                "wrong_status",
                batch,
                f"record counts {counted}, active {record.get('active')}, results {dict(tally)}",
            )
        for note in self.announced(batch):
            if {k: v for k, v in (note.get("counts") or {}).items() if v} != dict(tally):
                self.bad(
                    "wrong_status", batch, f"announced counts {note.get('counts')}, results {dict(tally)}"
                )

    def check_tasks(self, batch: PlannedBatch) -> None:
        for n, prompt in batch.lines.items():
            tasks = self.tasks.get(prompt or "", []) if prompt else []
            if len(tasks) > 1:
                self.bad(
                    "batch_line_ran_twice", batch, f"line {n}: {len(tasks)} provider tasks", len(tasks) - 1
                )
            if batch.canceled_at is None:
                continue
            late = [t["task_id"] for t in tasks if self.creates.get(t["task_id"], 0.0) > batch.canceled_at]
            if late:
                made = [round(self.creates[t] - batch.canceled_at, 3) for t in late]
                self.bad(
                    "batch_line_after_cancel", batch, f"line {n}: tasks {late} made {made} s after the cancel"
                )


def statuses_of(records: dict[str, dict[str, Any]], batch: PlannedBatch) -> str | None:
    record = records.get(batch.batch_id)
    return None if record is None else str(record["status"])


def create_times(requests: list[dict[str, Any]]) -> dict[str, float]:
    """When the emulator received the create that made each task (this machine's clock, not the
    emulator's shifted one)."""
    times: dict[str, float] = {}
    for r in requests:
        if r["endpoint"] == "create" and r.get("task_id"):
            times.setdefault(str(r["task_id"]), float(r["time"]))
    return times
