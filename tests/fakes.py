"""In-memory fakes behind the same interfaces as the adapters, shared by the unit and functional tiers.

`FakeJobs`, `FakeTaskOwners`, `FakeAnnouncements`, `FakeBudget` and `FakeKeys` share one `FakeTable` of
plain dicts, as the repositories share one DynamoDB table, and apply the same conditions as
`t2v.adapters.jobs_repo` and its sibling modules; `FakeProvider` behaves like DashScope (tasks move
PENDING -> RUNNING -> a final status when told to; only PENDING tasks can be canceled) and answers
with the same typed records (`t2v.provider`); `MemoryPollStats` stands in for `PollStats`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from t2v.adapters.jobs_repo import decode_cursor, encode_cursor
from t2v.billing import Caps, DayCounter, DayUsage, day_key
from t2v.errors import AmbiguousCreateError, BudgetExceededError, TerminalProviderError
from t2v.images import HEAD_BYTES, ImageHeadRead, ImageUnreadableError
from t2v.jobs import CONTESTED, FOREIGN, TERMINAL, JobRecord, JobStatus, Write, statuses_that_may_move_to
from t2v.listing import JobListing, JobsRead, Order, search_text
from t2v.media import DownloadRejectedError
from t2v.provider import CanceledTask, CreatedTask, TaskInfo
from t2v.request import RequestBase
from t2v.signals import Signal, Signals
from t2v.times import iso
from t2v.usecases.ports import AnnouncementStore, BudgetStore, IdempotencyStore, JobStore, TaskOwnerStore
from t2v_bench.ledger import MemoryPollStats  # noqa: F401 - the fake of PollStats is the benchmarks' ledger

# -- the jobs table ------------------------------------------------------------------------------


@dataclass
class FakeTable:
    """The jobs table in memory: every record kind's items by `pk`, as plain dicts, the `stats#active`
    counter and the day's budget counters. The fake repositories below share one, as the real ones
    share one DynamoDB table."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    active: int = 0  # the `stats#active` counter
    # `budget#<day>` and `budget#<day>#<owner>` (t2v.billing.day_key): billed seconds charged and
    # not refunded; their refunds beside them
    budget: dict[str, int] = field(default_factory=dict)
    refunded: dict[str, int] = field(default_factory=dict)

    def record(self, job_id: str) -> JobRecord:
        return JobRecord.model_validate(copy.deepcopy(self.items[job_id]))

    def job_item(self, job_id: str) -> dict[str, Any] | None:
        item = self.items.get(job_id)
        return item if item is not None and item.get("kind") == "job" else None

    def write(self, job_id: str, allowed: bool, changes: dict[str, Any]) -> Write:
        if job_id not in self.items:
            raise KeyError(job_id)
        if allowed:
            self.items[job_id].update(copy.deepcopy(changes))
        return Write(allowed, self.record(job_id))


@dataclass
class FakeRecords:
    """A fake repository over a (shared) `FakeTable`."""

    table: FakeTable = field(default_factory=FakeTable)

    @property
    def items(self) -> dict[str, dict[str, Any]]:
        return self.table.items


class FakeJobs(FakeRecords):
    """The job items, with the same conditions as `t2v.adapters.jobs_repo.JobsRepository`."""

    def get(self, job_id: str) -> JobRecord | None:
        return self.table.record(job_id) if self.table.job_item(job_id) else None

    def create_if_absent(
        self,
        job_id: str,
        *,
        request: dict[str, Any],
        source: str,
        origin: dict[str, Any],
        now: datetime,
        deadline_at: datetime,
        execution: str | None = None,
        owner: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[JobRecord, bool]:
        if job_id in self.items:
            return self.table.record(job_id), False
        self.items[job_id] = {
            "pk": job_id,
            "kind": "job",
            "status": "ACCEPTED",
            "history": [{"status": "ACCEPTED", "at": iso(now)}],
            "request": copy.deepcopy(request),
            "source": source,
            "origin": copy.deepcopy(origin),
            "created_at": iso(now),
            "updated_at": iso(now),
            "deadline_at": iso(deadline_at),
            "polls": 0,
            "request_ids": [],
            **({"execution": execution} if execution else {}),
            **({"owner": owner} if owner else {}),
            **(
                {"prompt_lc": search_text(request["prompt"])}
                if isinstance(request.get("prompt"), str)
                else {}
            ),
            **copy.deepcopy(extra or {}),
        }
        return self.table.record(job_id), True

    def claim_create(
        self, job_id: str, *, now: datetime, stale_before: datetime, batch_id: str | None = None
    ) -> Write:
        item = self.items[job_id]
        claimed = item.get("create_claimed_at")
        allowed = (
            "task_id" not in item
            and item["status"] in ("ACCEPTED", "WAITING")
            and (claimed is None or claimed < iso(stale_before))
        )
        attempts = int(item.get("create_attempts", 0)) + 1
        return self.table.write(
            job_id,
            allowed,
            {"create_claimed_at": iso(now), "updated_at": iso(now), "create_attempts": attempts},
        )

    def claim_look(self, job_id: str, *, now: datetime, before: datetime) -> bool:
        item = self.items[job_id]
        if item.get("looked_at") is not None and item["looked_at"] > iso(before):
            return False
        item["looked_at"] = iso(now)
        return True

    def release_claim(self, job_id: str) -> None:
        item = self.items[job_id]
        assert "task_id" not in item, "release_claim after a task was bound (DynamoDB refuses it)"
        item.pop("create_claimed_at", None)
        item.pop("create_sent_at", None)

    def unbound_creates(self, *, since: datetime) -> list[JobRecord]:
        return [
            self.table.record(key)
            for key, item in self.items.items()
            if item.get("kind") == "job"
            and item["created_at"] >= iso(since)
            and "create_sent_at" in item
            and "task_id" not in item
            and item["status"] in ("ACCEPTED", "WAITING")
        ]

    def sweep_candidates(self, *, since: datetime, untouched_since: datetime) -> list[JobRecord]:
        terminal = {status.value for status in TERMINAL}
        return [
            self.table.record(key)
            for key, item in self.items.items()
            if item.get("kind") == "job"
            and item["created_at"] >= iso(since)
            and item["updated_at"] < iso(untouched_since)
            and ("event_sent_at" not in item or item["status"] not in terminal)
        ]

    def transition(
        self,
        job_id: str,
        new: JobStatus,
        *,
        now: datetime,
        fields: dict[str, Any] | None = None,
        expect: dict[str, str | None] | None = None,
    ) -> Write:
        item = self.items[job_id]
        allowed = JobStatus(item["status"]) in statuses_that_may_move_to(new)
        allowed = allowed and all(item.get(key) == seen for key, seen in (expect or {}).items())
        changes = {"status": new.value, "updated_at": iso(now), **(fields or {})}
        if new in TERMINAL:
            changes["finished_at"] = iso(now)
        changes["history"] = [*item.get("history", []), {"status": new.value, "at": iso(now)}]
        moved = self.table.write(job_id, allowed, changes)
        if moved.done and new in TERMINAL and moved.job.task_id:
            self.table.active -= 1
        return moved

    def update_fields(self, job_id: str, fields: dict[str, Any], *, now: datetime) -> JobRecord:
        return self.table.write(job_id, True, {**fields, "updated_at": iso(now)}).job

    def list_jobs(
        self,
        listing: JobListing | None = None,
        *,
        limit: int = 20,
        cursor: str | None = None,
        owner: str | None = None,
        read: int | None = None,
    ) -> JobsRead:
        # Like DynamoDB: `read` items of the range are evaluated, then filtered, so a page may come
        # back short; more matches than `limit` are cut, the cursor pointing after the last kept.
        listing = listing or JobListing()
        first, last = listing.created_range()
        ordered = sorted(
            (
                i
                for i in self.items.values()
                if i.get("kind") == "job"
                and owner in (None, i.get("owner"))
                and (first is None or i["created_at"] >= first)
                and (last is None or i["created_at"] <= last)
            ),
            key=lambda i: i["created_at"],
            reverse=listing.order == Order.NEWEST,
        )
        start = 0
        if cursor:
            after = decode_cursor(cursor, owner=owner)["pk"]
            start = next(n for n, i in enumerate(ordered) if i["pk"] == after) + 1
        evaluated = ordered[start : start + (read or limit)]
        matching = [i for i in evaluated if _matches(i, listing)]
        more = start + len(evaluated) < len(ordered)
        if len(matching) > limit:
            matching, more, evaluated = matching[:limit], True, [matching[limit - 1]]
        page = [self.table.record(i["pk"]) for i in matching]
        if not (more and evaluated):
            return JobsRead(page, None, len(evaluated))
        index = ("pk", "kind", "created_at") if owner is None else ("pk", "owner", "created_at")
        return JobsRead(page, encode_cursor({k: evaluated[-1][k] for k in index}), len(evaluated))


def _matches(item: dict[str, Any], listing: JobListing) -> bool:
    if listing.status is not None and item["status"] != listing.status.value:
        return False
    text = item.get("prompt_lc")
    if text is None:
        text = str(item.get("request", {}).get("prompt", ""))
    return all(word in text for word in listing.words)


class FakeTaskOwners(FakeRecords):
    """The `task#` items, bound with their job as `t2v.adapters.task_owners.TaskOwners` binds them."""

    def owner_of_task(self, task_id: str) -> str | None:
        item = self.items.get(f"task#{task_id}")
        return str(item["job_id"]) if item else None

    def contest_task(self, task_id: str, *, job_id: str, now: datetime) -> None:
        self.items.setdefault(f"task#{task_id}", {"pk": f"task#{task_id}", "job_id": CONTESTED, "by": job_id})

    def record_task(self, job_id: str, *, task_id: str, request_id: str | None, now: datetime) -> Write:
        owner = self.items.setdefault(f"task#{task_id}", {"pk": f"task#{task_id}", "job_id": job_id})
        item = self.items[job_id]
        allowed = (
            owner["job_id"] == job_id and "task_id" not in item and item["status"] in ("ACCEPTED", "WAITING")
        )
        changes = {
            "task_id": task_id,
            "status": "SUBMITTED",
            "submitted_at": iso(now),
            "updated_at": iso(now),
            "history": [*item.get("history", []), {"status": "SUBMITTED", "at": iso(now)}],
            "request_ids": [*item.get("request_ids", []), *([request_id] if request_id else [])],
        }
        bound = self.table.write(job_id, allowed, changes)
        if bound.done:
            self.table.active += 1
        return bound

    def release_task(self, job_id: str, *, task_id: str, now: datetime) -> bool:
        owner = self.items.get(f"task#{task_id}")
        if owner is not None and owner["job_id"] not in (job_id, FOREIGN):
            return False
        self.items[f"task#{task_id}"] = {"pk": f"task#{task_id}", "job_id": FOREIGN, "by": job_id}
        item = self.items[job_id]
        if item.get("task_id") != task_id or JobStatus(item["status"]) in TERMINAL:
            return False
        for name in (
            "task_id",
            "create_claimed_at",
            "create_sent_at",
            "create_ambiguous_at",
            "adopted_unproven",
        ):
            item.pop(name, None)
        item.update(
            status="ACCEPTED",
            updated_at=iso(now),
            released_tasks=[*item.get("released_tasks", []), task_id],
            history=[*item.get("history", []), {"status": "ACCEPTED", "at": iso(now)}],
        )
        self.table.active -= 1
        return True


class FakeAnnouncements(FakeRecords):
    """The announcement claim and marks on a job (`t2v.adapters.announcements.AnnouncementClaims`)."""

    def claim_notification(self, job_id: str, *, token: str, now: datetime, stale_before: datetime) -> Write:
        item = self.items[job_id]
        claimed = item.get("notify_claimed_at")
        allowed = "event_sent_at" not in item and (claimed is None or claimed < iso(stale_before))
        attempts = int(item.get("notify_attempts", 0)) + 1
        return self.table.write(
            job_id,
            allowed,
            {"notify_claim": token, "notify_claimed_at": iso(now), "notify_attempts": attempts},
        )

    def mark_notified(self, job_id: str, *, now: datetime, message_id: str | None = None) -> bool:
        item = self.items[job_id]
        if item.get("notified_at"):
            return False
        item.update(notified_at=iso(now), **({"notification_id": message_id} if message_id else {}))
        return True


class FakeBudget(FakeRecords):
    """The day's budget counters (`t2v.adapters.budget.BudgetLedger`), in `FakeTable.budget`."""

    def charge_budget(self, job: JobRecord, *, day: str, seconds: int, caps: Caps, now: datetime) -> bool:
        if job.budget_day:
            return True
        item = self.items[job.job_id]
        if item.get("budget_day"):
            return True  # a concurrent attempt charged it after `job` was read: nothing is added
        used = self.table.budget
        counters = [(day_key(day), caps.account, "account")]
        if caps.owner:
            counters.append((day_key(day, caps.owner), caps.caller, "caller"))
        for key, cap, which in counters:
            if cap and used.get(key, 0) + seconds > cap:
                raise BudgetExceededError(
                    f"the {which}'s daily budget of {cap} billed seconds would be exceeded"
                )
        for key, _, _ in counters:
            used[key] = used.get(key, 0) + seconds
        item.update(
            budget_day=day, billed_seconds=seconds, **({"budget_owner": caps.owner} if caps.owner else {})
        )
        return True

    def refund(self, job: JobRecord, *, now: datetime) -> bool:
        item = self.items[job.job_id]
        if not item.get("budget_day") or item.get("refunded_at"):
            return False
        day, seconds = str(item["budget_day"]), int(item["billed_seconds"])
        keys = [day_key(day)] + (
            [day_key(day, str(item["budget_owner"]))] if item.get("budget_owner") else []
        )
        for key in keys:
            self.table.budget[key] = self.table.budget.get(key, 0) - seconds
            self.table.refunded[key] = self.table.refunded.get(key, 0) + seconds
        item["refunded_at"] = iso(now)
        return True

    def budget_used(self, day: str) -> int:
        return self.table.budget.get(day_key(day), 0)

    def day_usage(self, day: str, owner: str) -> DayUsage:
        def counter(key: str) -> DayCounter:
            refunded = self.table.refunded.get(key, 0)
            return DayCounter(charged=self.table.budget.get(key, 0) + refunded, refunded=refunded)

        return DayUsage(counter(day_key(day)), counter(day_key(day, owner)))


class FakeKeys(FakeRecords):
    """The `idem#` items (`t2v.adapters.idempotency.IdempotencyKeys`)."""

    def remember_idempotency_key(self, key: str, job_id: str, *, now: datetime) -> str:
        item = self.items.setdefault(f"idem#{key}", {"pk": f"idem#{key}", "job_id": job_id})
        return str(item["job_id"])


@dataclass
class FakeRepos:
    """Every fake repository over one `FakeTable`, wired as `t2v.wiring.Repositories` wires the real ones."""

    table: FakeTable = field(default_factory=FakeTable)

    def __post_init__(self) -> None:
        self.jobs = FakeJobs(self.table)
        self.tasks = FakeTaskOwners(self.table)
        self.announcements = FakeAnnouncements(self.table)
        self.budget = FakeBudget(self.table)
        self.keys = FakeKeys(self.table)


# A fake that drifts from its port fails mypy here.
_jobs: JobStore = FakeJobs()
_tasks: TaskOwnerStore = FakeTaskOwners()
_announcements: AnnouncementStore = FakeAnnouncements()
_budget: BudgetStore = FakeBudget()
_keys: IdempotencyStore = FakeKeys()


# -- DashScope -----------------------------------------------------------------------------------


@dataclass
class FakeTask:
    task_id: str
    prompt: str | None
    model: str
    created: datetime
    status: str = "PENDING"
    code: str | None = None
    message: str | None = None
    video_url: str | None = None
    times: dict[str, str] = field(default_factory=dict)
    key_id: str = "key-ours"  # the list's `api_key_id`: which API key made the task


@dataclass
class FakeProvider:
    """DashScope in memory: `finish` moves a task on; `lose_next_answer` makes the next create
    make its task and then lose the answer (an AmbiguousCreateError); `fail` makes every call raise."""

    clock: Any = None  # () -> datetime; the task creation times (gmt_create) come from it
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    creates: int = 0
    queries: int = 0
    lose_next_answer: bool = False
    fail: Exception | None = None
    canceled: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # what each create sent

    def _now(self) -> datetime:
        return self.clock() if self.clock else datetime.now(UTC)

    def create_task(self, request: RequestBase, urls: Mapping[str, str] | None = None) -> CreatedTask:
        if self.fail:
            raise self.fail
        self.bodies.append(request.to_provider_body(urls))
        self.creates += 1
        task = FakeTask(f"task-{self.creates}", request.prompt, request.model, self._now())
        self.tasks[task.task_id] = task
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise AmbiguousCreateError("the create was sent and its answer lost")
        return CreatedTask(task_id=task.task_id, task_status="PENDING", request_id=f"req-c{self.creates}")

    def add_task(self, task_id: str, status: str, prompt: str = "p", *, key_id: str = "key-ours") -> None:
        """A task made outside any create of the code under test (`key_id`: with which API key)."""
        self.tasks[task_id] = FakeTask(
            task_id, prompt, "pixverse/pixverse-v5.6-t2v", self._now(), status, key_id=key_id
        )

    def finish(self, task_id: str, status: str, **fields: Any) -> None:
        task = self.tasks[task_id]
        task.status = status
        for key, value in fields.items():
            setattr(task, key, value)

    def get_task(self, task_id: str) -> TaskInfo:
        if self.fail:
            raise self.fail
        self.queries += 1
        task = self.tasks.get(task_id)
        if task is None:
            return TaskInfo(task_id=task_id, status="UNKNOWN")
        done = task.status == "SUCCEEDED"
        return TaskInfo(
            task_id=task_id,
            status=task.status,
            request_id=f"req-q{self.queries}",
            code=task.code,
            message=task.message,
            video_url=task.video_url,
            orig_prompt=task.prompt if done else None,  # DashScope shows the prompt once SUCCEEDED
            usage={"duration": 5, "video_count": 1} if done else None,
            **task.times,
        )

    def cancel_task(self, task_id: str) -> CanceledTask:
        if self.fail:
            raise self.fail
        task = self.tasks.get(task_id)
        if task is None or task.status != "PENDING":
            raise TerminalProviderError(
                "Failed to cancel the task, please confirm if the task is in PENDING status.",
                http_status=400,
                provider_code="UnsupportedOperation",
                request_id="r-1",
            )
        task.status = "CANCELED"
        self.canceled.append(task_id)
        return CanceledTask(task_id=task_id, request_id="r-2")

    def iter_tasks(
        self, *, start_time: datetime, end_time: datetime, model_name: str | None = None
    ) -> Iterable[TaskInfo]:
        for task in self.tasks.values():
            if start_time <= task.created <= end_time and model_name in (None, task.model):
                raw = {"gmt_create": int(task.created.timestamp() * 1000), "api_key_id": task.key_id}
                yield TaskInfo(task_id=task.task_id, status=task.status, raw=raw)


# -- SNS/EventBridge, S3, downloads, Step Functions ------------------------------------------------


@dataclass
class FakeNotifier:
    messages: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def publish(self, message: dict[str, Any]) -> str:
        self.messages.append(message)
        return f"m-{len(self.messages)}"

    def put_event(self, message: dict[str, Any]) -> None:
        self.events.append(message)


@dataclass(frozen=True)
class FakeStored:
    bucket: str
    key: str
    size: int
    sha256: str


@dataclass
class FakeStore:
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def upload_video(self, chunks: Iterable[bytes], *, bucket: str, key: str, part_size: int) -> FakeStored:
        body = b"".join(chunks)
        self.objects[(bucket, key)] = body
        return FakeStored(bucket, key, len(body), hashlib.sha256(body).hexdigest())

    def put_json(self, *, bucket: str, key: str, data: dict[str, Any]) -> None:
        self.objects[(bucket, key)] = json.dumps(data, sort_keys=True).encode()

    def presign(self, *, bucket: str, key: str, expires_in: int = 900) -> str:
        return f"https://{bucket}.s3.example/{key}?X-Amz-Expires={expires_in}"


@dataclass
class FakeDownloader:
    videos: dict[str, bytes] = field(default_factory=dict)

    @contextmanager
    def stream(self, url: str) -> Iterator[Iterator[bytes]]:
        if url not in self.videos:
            raise DownloadRejectedError(f"{url}: not a video this test serves")
        body = self.videos[url]
        yield iter([body[:1024], body[1024:]])


@dataclass
class FakeExecutions:
    started: dict[str, dict[str, Any]] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)

    def start(self, job_id: str, payload: dict[str, Any]) -> bool:
        if job_id in self.started:
            return False
        self.started[job_id] = payload
        return True

    def stop(self, job_id: str, *, cause: str) -> bool:
        self.stopped.append(job_id)
        return job_id in self.started


@dataclass
class FakeSignals:
    """The operator's metrics (`t2v.signals.Signals`), recorded: (name, value, status) per signal."""

    seen: list[tuple[str, float, str | None]] = field(default_factory=list)

    def count(self, signal: Signal, value: float = 1, *, status: str | None = None) -> None:
        self.seen.append((signal.value, value, status))

    def percent(self, signal: Signal, value: float) -> None:
        self.seen.append((signal.value, value, None))

    def total(self, signal: Signal) -> float:
        return sum(value for name, value, _ in self.seen if name == signal.value)


_signals: Signals = FakeSignals()


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 20, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class FakeImages:
    """Input images in memory (`t2v.adapters.images.ImageReader`'s interface): url -> bytes; a
    missing url cannot be read. `heads` counts reads; presigned URLs say their lifetime."""

    objects: dict[str, bytes] = field(default_factory=dict)
    heads: int = 0

    def head(self, url: str) -> ImageHeadRead:
        self.heads += 1
        if url not in self.objects:
            raise ImageUnreadableError("cannot be read from the bucket (NoSuchKey)")
        data = self.objects[url]
        return ImageHeadRead(data[:HEAD_BYTES], len(data))

    def presign(self, url: str, seconds: int) -> str:
        return f"https://signed.example/{url.removeprefix('s3://')}?expires={seconds}"
