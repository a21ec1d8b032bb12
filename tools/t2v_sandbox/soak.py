"""The fault soak: many jobs through the three front doors while everything that can go wrong does.

The emulator injects create 5xx/429/timeouts/drops, query 429/503, connection resets mid-download,
tasks that end FAILED (DataInspectionFailed among them) and SUCCEEDED without a video; the sandbox
delivers S3 and EventBridge triggers twice and kills Lambda workers in the middle of handlers.

The account is hostile too: users DELETE jobs at random moments (while the create is in flight
among them); a second client on the same emulator account creates tasks with the same prompts
(other parameters) the moment our creates go out; 1,200 more of its tasks lie in the hour the old
reconciliation listed; and the emulator's clock runs ahead of the functions'. The sweeper runs on
its (time-scaled) schedule throughout.

Every `.jsonl` the soak writes is a batch (docs/batches.md): its lines are planned jobs, quiet (no
announcement of their own); each batch must end once, announced once, with one results line per
input line (`soak_batches`). One batch goes in through `POST /v1/batches` and a user cancels it
midway; garbage files are refused as a whole; some batch files' S3 notifications come again later.

The verdict never trusts the pipeline: the expected outcome of every job is derived from the
emulator's own record (which creates it answered, which tasks it made and how each ended) and
compared with what a user sees (the job record, the S3 object, the SNS messages, the executions).

    t2v soak --jobs 200            # prints a table, then ONE JSON line of counts (exit 1 if any is bad)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from dashscope_emulator.png import solid_png
from t2v_client import ApiClient, Target
from t2v_client.place import sandbox_place_of
from t2v_client.uploads import upload_prompt_file

from t2v_sandbox import soak_batches, soak_hostile
from t2v_sandbox.patches import MotoVersionError
from t2v_sandbox.soak_batches import BatchBook, PlannedBatch
from t2v_sandbox.soak_flood import FLOODED_SCENARIOS, FloodStats, PushFlood, flood_problems
from t2v_sandbox.user_sandbox import (
    COMPLETION_DETAIL_TYPES,
    EventTap,
    Subscriber,
    UserSandbox,
    put_video_request,
    topic_arn,
)

LOG = logging.getLogger("t2v_sandbox.soak")
DOORS: Final = ("api", "eventbridge", "s3")
TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"})
BAD_KEYS: Final = (
    "lost",
    "duplicate_jobs",
    "duplicate_tasks",
    "wrong_status",
    "multiple_terminal",
    "bad_video",
    "missing_notifications",
    "duplicate_notifications",
    "missing_events",
    "duplicate_events",
    "stuck",
    "cancelled_live_tasks",  # a job CANCELED while one of its provider tasks was not
    "foreign_adoptions",  # a job bound to (or delivering) another client's task
    "lost_lines",
    "unbounded_records",
    "harness_errors",  # the soak's own submitting threads crashed: a fault or door it meant to take was not
    "budget_undercounted",  # a day's budget counter below the billed seconds of the jobs charged to it
    "uncharged_tasks",  # a job with a provider task that was never charged to the daily budget
    "failed_for_capacity",  # a job ended FAILED or TIMED_OUT because the provider was full
    "provider_above_cap",  # the emulated account had more in flight (refuse) or running (queue) than its cap
    "leaked_leases",  # capacity leases or queue places still held after every job ended
    "refund_twice",  # a day counter given back more than the jobs marked refunded were charged
    "refund_missed",  # an ended job whose outcome the refund table gives back, never refunded
    "ended_by_pushes",  # a flooded job ended TIMED_OUT or FAILED where the provider's record says otherwise
    "unbounded_pushes",  # a flooded job's record holds more push ids than MAX_PUSH_WAKES
    *soak_batches.BAD_KEYS,  # batches: results, a line's tasks, the cancel, the end, the announcement
)
# Answers that mean "the provider is full" (t2v.capacity.CAPACITY_CODES) and the queue's own time-out.
CAPACITY_ENDINGS: Final = frozenset(
    {"Throttling", "Throttling.RateQuota", "LimitRequests", "CapacityWaitTimeout"}
)
# Daily budgets no run reaches (the account's and each caller's): every submit charges both, and every
# refunded ending gives back to both, under kills and duplicate deliveries.
BUDGET_SECONDS: Final = 1_000_000
CALLER_BUDGET_SECONDS: Final = 900_000
SMALL: Final = {"size": "640*360", "duration": 5}
# Create answers that end a job for good (the provider refused the request): never retried.
RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})

# Scenarios tag prompts; the emulator's rules key on the tags (`prompt_contains`). Transient faults fire
# on a tagged job's first request for sure (times=1), then at a rate; untagged background rates hit all.
SCENARIOS: Final = (
    "plain",
    "c500",
    "c429",
    "ctimeout",
    "cdrop",
    "q429",
    "q503",
    "reset",
    "taskfail",
    "outinspect",
    "novideo",
    "createinspect",
    "invalid",
    "cancel",  # the API door: DELETE at a random moment after the POST
    "it2v",  # first frame to video, from an image in the caller's folder of the input-images prefix
    "kf2v",  # first and last frame to video
    "badimage",  # an it2v request whose .png holds text: refused before any paid call
    "imgfetch",  # an it2v request whose image the provider cannot fetch (InvalidParameter.DataInspection)
)
IMAGE_SCENARIOS: Final = ("it2v", "kf2v", "badimage", "imgfetch")
# Image requests name their images with this token for the stack's bucket (known once it runs).
BUCKET_MARK: Final = "%BUCKET%"
IMAGES: Final = {"red.png": (200, 40, 40), "blue.png": (40, 40, 200)}
OTHER_CLIENT_KEY: Final = "sk-soak-another-client"  # a second client on the same DashScope account
# Every n-th job has a twin: the other client's task with the same prompt, made the moment ours is.
TWIN_EVERY: Final = 3
BUSY_ACCOUNT_TASKS: Final = 1200
# Users watching API jobs by id (each read may look at the provider): every n-th API job, read every
# WATCH_EVERY_SECONDS until it ends (at most WATCH_READS reads), by WATCHERS users at once.
WATCH_EVERY_NTH: Final = 2
WATCH_EVERY_SECONDS: Final = 0.5
WATCH_READS: Final = 240
WATCHERS: Final = 8


def fault_plan(seed: int, *, background: bool = True) -> dict[str, Any]:
    def tagged(tag: str, rule: dict[str, Any], rate: float = 0.3) -> list[dict[str, Any]]:
        first = {**rule, "prompt_contains": f"#{tag}#", "times": 1}
        more = {**rule, "prompt_contains": f"#{tag}#", "rate": rate}
        return [first, more]

    create_500 = {"endpoint": "create", "kind": "error", "code": "InternalError"}
    create_429 = {"endpoint": "create", "kind": "error", "code": "Throttling"}
    create_timeout = {"endpoint": "create", "kind": "timeout", "hold_seconds": 0.3}
    drop = {"kind": "drop_after_accept"}
    query_429 = {"endpoint": "query", "kind": "error", "code": "Throttling"}
    query_503 = {"endpoint": "query", "kind": "error", "code": "ModelUnavailable"}
    reset = {"kind": "reset_mid_download"}
    rules: list[dict[str, Any]] = [
        {"endpoint": "any", "kind": "latency", "latency_seconds": 0.05, "rate": 0.05},
        # Slow creates for jobs a user cancels: the DELETE often lands while the create is in flight.
        {"endpoint": "create", "kind": "latency", "latency_seconds": 0.4, "prompt_contains": "#cancel#"},
        {
            "endpoint": "create",
            "kind": "error",
            "code": "DataInspectionFailed",
            "prompt_contains": "#createinspect#",
        },
        # An image the provider could not fetch (it passed our checks): terminal, never retried.
        {
            "endpoint": "create",
            "kind": "error",
            "code": "InvalidParameter.DataInspection",
            "prompt_contains": "#imgfetch#",
        },
        *tagged("c500", create_500),
        *tagged("c429", create_429),
        *tagged("ctimeout", create_timeout),
        *tagged("cdrop", drop),
        *tagged("q429", query_429),
        *tagged("q503", query_503),
        *tagged("reset", reset),
        {
            "kind": "task_failed",
            "prompt_contains": "#taskfail#",
            "code": "InternalError.Algo",
            "message": "Inference failed.",
        },
        {"kind": "task_failed", "prompt_contains": "#outinspect#", "code": "DataInspectionFailed"},
        {"kind": "no_video_url", "prompt_contains": "#novideo#"},
    ]
    # Task-finished pushes (push on): each kind on a scenario's tag, so a small run sees them all.
    rules += [
        {"kind": "push_dropped", "prompt_contains": "#plain#"},
        {"kind": "push_duplicated", "prompt_contains": "#c500#", "latency_seconds": 0.3},
        {"kind": "push_delayed", "prompt_contains": "#c429#", "latency_seconds": 1.0},
        {"kind": "push_early", "prompt_contains": "#q429#", "latency_seconds": 0.3},
        {"kind": "push_wrong_token", "prompt_contains": "#q503#"},
        {"kind": "push_reordered", "prompt_contains": "#reset#"},
    ]
    if background:
        rules += [
            {"kind": "push_dropped", "rate": 0.10},
            {"kind": "push_duplicated", "rate": 0.05, "latency_seconds": 0.5},
            {"kind": "push_delayed", "rate": 0.05, "latency_seconds": 1.0},
            {"kind": "push_early", "rate": 0.05, "latency_seconds": 0.3},
            {"kind": "push_reordered", "rate": 0.03},
            {"kind": "push_wrong_token", "rate": 0.02},
        ]
        rules += [
            {**create_500, "rate": 0.03},
            {**create_429, "rate": 0.03},
            {**create_timeout, "rate": 0.02},
            {**drop, "rate": 0.03},
            {**query_429, "rate": 0.03},
            {**query_503, "rate": 0.03},
            {**reset, "rate": 0.05},
            {"kind": "task_failed", "code": "InternalError.Algo", "rate": 0.02},
        ]
    return {"seed": seed, "rules": rules}


@dataclass
class SoakConfig:
    jobs: int = 200
    seed: int = 7
    template: Path = Path("template.yaml")
    work_dir: Path = Path(".sandbox/soak")
    time_scale: float = 0.02
    pending_seconds: float = 0.4
    running_seconds: float = 0.8
    submit_rate: float = 5.0  # jobs started per second (all doors together)
    kill_rate: float = 0.05
    duplicate_deliveries: bool = True
    background_faults: bool = True
    max_workers_per_function: int = 4
    settle_timeout: float = 900.0
    jsonl_lines: int = 4
    clock_skew_seconds: float = 0.6  # the emulator's clock ahead of the functions'
    twins: bool = True  # the second client on the account
    hostile_files: bool = True  # oversized prompts, NaN, deep nesting, huge and many lines
    many_lines: int | None = None  # lines of the long hostile file (default: a third of `jobs`, 20 at least)
    # The batch a user cancels midway through the API (0: none): more lines than one Map child takes.
    cancel_batch_lines: int = 14
    garbage_files: bool = True  # files that are no JSON Lines at all: each one REFUSED batch
    redeliver_batches: bool = True  # some batch files' S3 notifications again, after a while
    # The batch function's own kill rate: it runs a few times per batch, so the soak's rate alone
    # may kill none of its workers in a run; with this one every run kills some mid-batch.
    batch_kill_rate: float = 0.25
    # The emulated account's cap, below the soak's concurrency, and the governor's ceiling above it (it
    # must learn the cap from refusals): no job may fail for capacity, the provider is never above it.
    # At 5 jobs/s of 1.2 s tasks the soak keeps about 6 in flight (a cap of 16 was never reached: 0
    # refusals, a peak of 5), so the cap is 4.
    emulator_max_running_tasks: int = 4
    emulator_over_cap: str = "refuse"
    governor_ceiling: int = 8
    # Wakes move the queue; the heartbeat (scaled with the schedule) is the safety net. At the template's
    # 600 s, a time-scaled sandbox's hundreds of waiting jobs would keep its 4 submit workers busy.
    capacity_heartbeat_seconds: int = 3600

    @property
    def hostile_many_lines(self) -> int:
        return self.many_lines if self.many_lines is not None else max(20, self.jobs // 3)


@dataclass
class PlannedJob:
    index: int
    door: str
    scenario: str
    prompt: str
    body: dict[str, Any]
    job_id: str | None = None  # known at once for the API and EventBridge doors
    submit_error: str | None = None
    # Every DELETE's answer ("cancel" scenario): (HTTP status or None for a lost answer, detail).
    cancel_answers: list[tuple[int | None, str]] = field(default_factory=list)
    twin: bool = False  # the other client creates a task with this prompt when ours is created
    twin_created: bool = False  # ... and it did (the emulator accepted the other client's create)
    flooded: bool = False  # its task got the push flood (soak_flood), push on only
    # A user watching it (GET /videos/{id}, where the API looks at the provider): what the reads showed.
    watch_statuses: list[str] = field(default_factory=list)
    batch: PlannedBatch | None = None  # a line of this batch: quiet, and never started if it was canceled

    @property
    def cancel_status(self) -> int | None:
        """The last DELETE answer's status."""
        return next((status for status, _ in reversed(self.cancel_answers) if status is not None), None)

    @property
    def cancel_maybe(self) -> bool:
        """A DELETE whose answer was lost or a 5xx (a worker killed mid-call) may have canceled the
        job: a later DELETE then answers 409 "already ended", so CANCELED is a right outcome too."""
        return any(status is None or status >= 500 for status, _ in self.cancel_answers)


@dataclass
class Verdict:
    job: PlannedJob
    expected: str
    actual: str
    problems: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)  # kept for bad and redelivered jobs


def plan_jobs(count: int, seed: int, *, run: str | None = None) -> list[PlannedJob]:
    rng = random.Random(seed)  # noqa: S311 - test data, not crypto
    run = run or uuid.uuid4().hex[:6]
    jobs = []
    for index in range(count):
        # Every scenario early (a small run covers them all), and each door sees each scenario over time.
        scenario = SCENARIOS[index % len(SCENARIOS)]
        door = DOORS[(index + index // len(SCENARIOS)) % len(DOORS)]
        if scenario == "invalid" and door == "api":
            scenario = "plain"  # the API answers 400 and records nothing: no job to follow
        if scenario == "cancel":
            door = "api"  # users cancel through the API
        prompt = f"soak {run} {index:04d} #{scenario}# {rng.choice(['fox', 'kite', 'tide', 'moon'])}"
        body: dict[str, Any] = {"prompt": prompt, **SMALL}
        if scenario == "invalid":
            body = {"prompt": prompt, "size": "1920*1080", "duration": 10}
        elif scenario in {"it2v", "kf2v", "badimage", "imgfetch"}:
            body = image_body(scenario, prompt)
        jobs.append(PlannedJob(index, door, scenario, prompt, body, twin=index % TWIN_EVERY == 1))
    return jobs


def image_body(scenario: str, prompt: str) -> dict[str, Any]:
    """An image family's request; its urls name the soak caller's folder (see `Submitter.upload_images`)."""
    where = f"s3://{BUCKET_MARK}/{{folder}}"
    if scenario == "kf2v":
        media = [
            {"type": "first_frame", "url": f"{where}red.png"},
            {"type": "last_frame", "url": f"{where}blue.png"},
        ]
        return {
            "model": "pixverse/pixverse-v5.6-kf2v",
            "prompt": prompt,
            "media": media,
            "resolution": "360P",
        }
    name = "text.png" if scenario == "badimage" else "red.png"
    media = [{"type": "image_url", "url": f"{where}{name}"}]
    return {"model": "pixverse/pixverse-v5.6-it2v", "prompt": prompt, "media": media, "resolution": "360P"}


def _png(rgb: tuple[int, int, int], width: int = 32, height: int = 18) -> bytes:
    return solid_png(width, height, rgb)


# --- submission through the three doors


class Submitter:
    def __init__(self, sb: UserSandbox, config: SoakConfig, book: BatchBook | None = None) -> None:
        self.sb = sb
        self.config = config
        self.book = book or BatchBook()
        self.rng = random.Random(config.seed)  # noqa: S311 - test timing, not crypto
        self.api = ApiClient(Target(str(sb.endpoints["api_url"]), sb.config.region, sb.credentials))
        self.bucket = str(sb.outputs["OutputBucketName"])
        self.prefix = sb.stack.parameters.get("InputPrefix", "prompts/") if sb.stack else "prompts/"
        self.place = sandbox_place_of(sb.endpoints)  # `t2v upload`'s way into the bucket
        self.folder = self.upload_images()

    def upload_images(self) -> str:
        """The image scenarios' images, in the soak caller's own folder (the API door takes no other;
        prompt files and events may name any key under the prefix, so they use the same ones)."""
        from t2v.images import ImagePlace

        from t2v_sandbox.identities import DEFAULT

        images = self.sb.stack.parameters.get("InputImagesPrefix", "inputs/") if self.sb.stack else "inputs/"
        folder = ImagePlace(self.bucket, str(images)).folder_of(DEFAULT.user_arn)
        files = {name: _png(rgb) for name, rgb in IMAGES.items()} | {"text.png": b"soak: text, not a picture"}
        for name, data in files.items():
            self.sb.client("s3").put_object(Bucket=self.bucket, Key=f"{folder}{name}", Body=data)
        return folder

    def body(self, job: PlannedJob) -> dict[str, Any]:
        """The job's request with the stack's bucket and the caller's folder filled in."""
        text = json.dumps(job.body).replace(BUCKET_MARK, self.bucket).replace("{folder}", self.folder)
        body: dict[str, Any] = json.loads(text)
        return body

    def close(self) -> None:
        self.api.close()

    def watch_after(self, posted: Future[None], job: PlannedJob) -> None:
        posted.result()  # the POST's own crash is counted on its future
        self.watch(job)

    def watch(self, job: PlannedJob) -> None:
        """A user with the job page open: reads the job by id until it ends, as the console and
        `t2v submit --wait` do; each read may look at the provider (`t2v.usecases.look`)."""
        if not job.job_id:
            return
        with ApiClient(self.api.target) as api:
            for _ in range(WATCH_READS):
                time.sleep(WATCH_EVERY_SECONDS)
                try:
                    answer = api.call("GET", f"/videos/{job.job_id}")
                except Exception as exc:  # noqa: BLE001 - a read lost to a killed worker: read again
                    job.watch_statuses.append(f"lost: {type(exc).__name__}")
                    continue
                status = str(answer.body.get("status")) if answer.status == 200 else f"HTTP {answer.status}"
                job.watch_statuses.append(status)
                if status in TERMINAL:
                    return

    def api_post(self, job: PlannedJob) -> None:
        """A careful user: retries 5xx and network errors with the same Idempotency-Key."""
        key = f"soak-{job.index}-{uuid.uuid4().hex[:8]}"
        last = ""
        for attempt in range(8):
            try:
                answer = self.api.call(
                    "POST", "/videos", json_body=self.body(job), headers={"Idempotency-Key": key}
                )
            except Exception as exc:  # noqa: BLE001 - any transport failure is retried like a 5xx
                last = str(exc)
            else:
                if answer.status == 202:
                    job.job_id = str(answer.body["job_id"])
                    if job.scenario == "cancel":
                        self.cancel(job)
                    return
                last = f"HTTP {answer.status}: {answer.body}"
                if answer.status < 500:
                    break
            time.sleep(0.2 * (attempt + 1))
        job.submit_error = last

    def cancel(self, job: PlannedJob) -> None:
        """A user who changes their mind at a random moment: before, during or after the create."""
        time.sleep(self.rng.uniform(0.0, 1.2))
        for _ in range(6):
            try:
                answer = self.api.call("DELETE", f"/videos/{job.job_id}")
            except Exception as exc:  # noqa: BLE001 - a lost answer: ask again, as a user would
                job.cancel_answers.append((None, f"lost: {exc}"))
                time.sleep(0.3)
                continue
            code = (answer.body.get("error") or {}).get("code") if isinstance(answer.body, dict) else None
            job.cancel_answers.append((answer.status, code or ""))
            if answer.status != 409 or code != "CreateInProgress":
                return
            time.sleep(0.3)  # the create is in flight: the API asks to retry shortly

    def twin(self, job: PlannedJob) -> None:
        """The other client on the account creates a task with our prompt (but 8 s long) the moment our
        job claims its create: inside our create's window, where a lost answer makes us look."""
        from t2v.dashscope import DashScopeClient
        from t2v.families import parse_request

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            record = next(iter(scan_job(self.sb, job)), None) if job.job_id else None
            if record and (record.get("create_claimed_at") or record["status"] in TERMINAL):
                break
            time.sleep(0.05)
        with DashScopeClient(OTHER_CLIENT_KEY, base_url=self.sb.emulator.base_url) as other:
            try:
                other.create_task(parse_request({**self.body(job), "duration": 8}))
            except Exception:  # an injected fault: the twin is simply not made
                LOG.debug("the other client's create failed", exc_info=True)
            else:
                job.twin_created = True

    def event(self, job: PlannedJob) -> None:
        from t2v.jobs import derive_job_id

        answer = put_video_request(self.sb, self.body(job))
        if answer["FailedEntryCount"]:
            job.submit_error = json.dumps(answer["Entries"])
            return
        job.job_id = derive_job_id("eventbridge", answer["Entries"][0]["EventId"])

    def prompt_file(self, jobs: list[PlannedJob], name: str, *, upload: bool = False) -> None:
        """One prompt file of these jobs; a batch file with `upload` goes in as `t2v upload` puts one."""
        from t2v.jobs import derive_job_id

        single = len(jobs) == 1  # a .jsonl of one refused line would be refused as a whole
        if single:
            key, data = f"{self.prefix}soak/{name}.json", json.dumps(self.body(jobs[0]))
        else:
            key, data = f"{self.prefix}soak/{name}.jsonl", "\n".join(json.dumps(self.body(j)) for j in jobs)
        s3 = self.sb.client("s3")
        if upload and not single:  # `t2v upload`'s way: its own key
            uploaded = upload_prompt_file(self.place, f"soak-{name}.jsonl", data.encode())
            key = uploaded.key
            answer = (
                {"VersionId": uploaded.version_id}
                if uploaded.version_id
                else s3.head_object(Bucket=self.bucket, Key=key)
            )
        else:
            answer = s3.put_object(Bucket=self.bucket, Key=key, Body=data.encode())
        # A refused line's record keeps no prompt (a digest and a prefix): it is found by its job id.
        version = str(answer.get("VersionId") or answer["ETag"].strip('"'))
        if not single:
            lines = {n: None if j.scenario == "invalid" else j.prompt for n, j in enumerate(jobs, start=1)}
            batch = PlannedBatch(name, "upload" if upload else "s3", lines)
            batch.place(self.bucket, key, version)
            for job in jobs:
                job.batch = batch
            self.book.add(batch)
        for line, job in enumerate(jobs, start=1):
            job.job_id = derive_job_id("s3", self.bucket, key, version, "0" if single else str(line))

    def garbage(self, run: str) -> None:
        """Files that are no JSON Lines at all, under the prompts prefix: each one REFUSED batch."""
        s3 = self.sb.client("s3")
        for batch, body in soak_batches.garbage_files(run, self.config.seed):
            key = f"{self.prefix}soak/garbage/{batch.name}"
            answer = s3.put_object(Bucket=self.bucket, Key=key, Body=body)
            batch.place(self.bucket, key, str(answer.get("VersionId") or answer["ETag"].strip('"')))
            self.book.add(batch)

    def redeliver(self, batches: list[PlannedBatch]) -> None:
        """The S3 notification of these batch files' versions once more, a while after the first two."""
        s3 = self.sb.client("s3")
        for batch in batches:
            size = int(
                s3.head_object(Bucket=batch.bucket, Key=batch.key, VersionId=batch.version)["ContentLength"]
            )
            soak_batches.redeliver(self.sb, batch, size)

    def cancel_batch(self, jobs: list[PlannedJob], run: str) -> None:
        """A user's batch through the API (a .jsonl in their own folder, POST /v1/batches), canceled
        (DELETE /v1/batches/{id}) once some of its lines have ended: midway."""
        data = "\n".join(json.dumps(self.body(j)) for j in jobs).encode()
        batch = PlannedBatch(
            f"{run}-cancel.jsonl", "cancel", {n: j.prompt for n, j in enumerate(jobs, start=1)}
        )
        key = f"{self.folder}soak-{run}-cancel.jsonl"
        answer = self.sb.client("s3").put_object(Bucket=self.bucket, Key=key, Body=data)
        version = str(answer.get("VersionId") or answer["ETag"].strip('"'))
        batch.place(self.bucket, key, version)
        self.book.add(batch)
        for n, job in enumerate(jobs, start=1):
            job.batch = batch
            job.job_id = batch.job_ids[n]
        body = {"key": key, "notify_lines": False}
        if answer.get("VersionId"):
            body["version"] = version
        batch.submit_error = self.post_batch(batch, body)
        if batch.submit_error:
            for job in jobs:
                job.submit_error = batch.submit_error
            return
        # Its lines queue for capacity behind the other jobs: on a loaded machine none may end for minutes.
        self.wait_midway(batch, timeout=self.config.settle_timeout / 2)
        self.delete_batch(batch)
        for job in jobs:  # a line with no task ends CANCELED (or never starts) once the cancel answered
            job.cancel_answers = list(batch.cancel_answers)

    def post_batch(self, batch: PlannedBatch, body: dict[str, Any]) -> str | None:
        """POST /v1/batches, retried on 5xx and lost answers (the same file opens the same batch);
        None, or why it was not opened."""
        last = ""
        for attempt in range(8):
            try:
                posted = self.api.call("POST", "/batches", json_body=body)
            except Exception as exc:  # noqa: BLE001 - a lost answer: the same POST again opens nothing new
                last = str(exc)
            else:
                if posted.status == 202:
                    named = posted.body.get("batch_id")
                    return (
                        None if named == batch.batch_id else f"the API named it {named}, not {batch.batch_id}"
                    )
                last = f"HTTP {posted.status}: {posted.body}"
                if posted.status < 500:
                    return last
            time.sleep(0.3 * (attempt + 1))
        return last

    def delete_batch(self, batch: PlannedBatch) -> None:
        """DELETE /v1/batches/{id}, asked again after a lost answer or a 5xx; the first 200's time is
        the moment from which no line of it may create a task."""
        for _ in range(8):
            try:
                answer = self.api.call("DELETE", f"/batches/{batch.batch_id}")
            except Exception as exc:  # noqa: BLE001 - a lost answer: ask again, as a user would
                batch.cancel_answers.append((None, f"lost: {exc}"))
                time.sleep(0.3)
                continue
            answered = time.time()
            body = answer.body if isinstance(answer.body, dict) else {}
            code = body.get("status") or (body.get("error") or {}).get("code")
            batch.cancel_answers.append((answer.status, str(code)))
            if answer.status == 200 and batch.canceled_at is None:
                batch.canceled_at = answered
            if answer.status < 500:
                return
            time.sleep(0.3)

    def wait_midway(self, batch: PlannedBatch, *, timeout: float, ended: int = 3) -> None:
        """Until `ended` of the batch's lines have ended (the batch view's counts), at most `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.3)
            try:
                view = self.api.call("GET", f"/batches/{batch.batch_id}")
            except Exception:  # a read lost to a killed worker: read again
                LOG.debug("a batch read lost", exc_info=True)
                continue
            if view.status != 200 or not isinstance(view.body, dict):
                continue
            counts = view.body.get("counts") or {}
            done = sum(int(counts.get(s) or 0) for s in TERMINAL)
            if done >= ended or view.body.get("status") not in {"READING", "RUNNING"}:
                return


def plan_hostile(jobs: list[PlannedJob], config: SoakConfig, run: str) -> list[soak_hostile.HostileFile]:
    """The hostile files; their valid lines are planned jobs too (door `s3-hostile`), appended to `jobs`."""
    if not config.hostile_files:
        return []
    extra = soak_hostile.valid_lines_needed(config.hostile_many_lines)
    for n in range(extra):
        index = len(jobs)
        prompt = f"soak {run} {index:04d} #plain# hostile neighbour {n}"
        jobs.append(PlannedJob(index, soak_hostile.DOOR, "plain", prompt, {"prompt": prompt, **SMALL}))
    valid = [j.prompt for j in jobs if j.door == soak_hostile.DOOR]
    return soak_hostile.plan_files(run, valid, config.hostile_many_lines)


BATCH_DOOR: Final = "batch-api"


def plan_cancel_batch(jobs: list[PlannedJob], config: SoakConfig, run: str) -> list[PlannedJob]:
    """The lines of the batch a user cancels midway (door `batch-api`), appended to `jobs`. Their
    creates are slow (`#cancel#`), so the cancel lands while some are in flight."""
    lines = []
    for n in range(config.cancel_batch_lines):
        index = len(jobs)
        prompt = f"soak {run} {index:04d} #bcancel# #cancel# batch line {n + 1}"
        job = PlannedJob(index, BATCH_DOOR, "bcancel", prompt, {"prompt": prompt, **SMALL})
        jobs.append(job)
        lines.append(job)
    return lines


def open_batches(
    submitter: Submitter,
    jobs: list[PlannedJob],
    hostile: list[soak_hostile.HostileFile],
    pool: ThreadPoolExecutor,
    *,
    run: str,
) -> list[Future[None]]:
    """The batches that do not wait for the steady start rate: the hostile files (first, so their
    batches run while the other jobs arrive and workers are killed), the garbage files and the batch a
    user cancels midway."""
    if hostile:
        soak_hostile.upload(submitter.sb, hostile, submitter.bucket, submitter.prefix)
        for f in hostile:
            if f.is_batch:
                batch = submitter.book.add(f.as_batch())
                for job in jobs:
                    if job.door == soak_hostile.DOOR and job.prompt in batch.lines.values():
                        job.batch = batch
    futures = []
    if submitter.config.garbage_files:
        futures.append(pool.submit(submitter.garbage, run))
    cancel_lines = [j for j in jobs if j.door == BATCH_DOOR]
    if cancel_lines:
        futures.append(pool.submit(submitter.cancel_batch, cancel_lines, run))
    return futures


def redeliver_later(submitter: Submitter, placed: list[Future[None]]) -> None:
    """Once every prompt file is placed: the S3 notification of the newest batch of each S3 kind once
    more (some ended by now, some still running)."""
    for future in placed:
        future.exception()  # placed, or its crash counted on its own future
    again = {b.kind: b for b in submitter.book.placed() if b.kind in {"s3", "upload", "hostile"}}
    submitter.redeliver(list(again.values()))


def submit_all(
    sb: UserSandbox,
    jobs: list[PlannedJob],
    config: SoakConfig,
    hostile: list[soak_hostile.HostileFile],
    *,
    book: BatchBook,
    run: str,
) -> list[str]:
    """Sends every job through its door; returns the crashes of the submitting threads."""
    submitter = Submitter(sb, config, book)
    interval = 1.0 / config.submit_rate
    futures: list[Future[None]] = []
    pending_s3: list[PlannedJob] = []
    files = 0
    started = time.monotonic()
    try:
        with (
            ThreadPoolExecutor(4, "soak-submit") as pool,
            ThreadPoolExecutor(4, "soak-twins") as twins,
            ThreadPoolExecutor(WATCHERS, "soak-watch") as watchers,
            ThreadPoolExecutor(2, "soak-batches") as batches,
        ):
            futures += open_batches(submitter, jobs, hostile, batches, run=run)
            placed: list[Future[None]] = []
            for n, job in enumerate([j for j in jobs if j.door not in {soak_hostile.DOOR, BATCH_DOOR}]):
                # Keep a steady start rate: the machine is small and shared.
                delay = started + n * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if job.twin and config.twins and job.door != "s3":  # prompt files' job ids come later
                    futures.append(twins.submit(submitter.twin, job))
                if job.door == "api":
                    posted = pool.submit(submitter.api_post, job)
                    futures.append(posted)
                    if job.scenario != "cancel" and job.index % WATCH_EVERY_NTH == 0:
                        futures.append(watchers.submit(submitter.watch_after, posted, job))
                elif job.door == "eventbridge":
                    futures.append(pool.submit(submitter.event, job))
                else:
                    pending_s3.append(job)
                    # Alternate single .json files and small .jsonl batches; every other batch file
                    # goes in through `t2v upload`.
                    size = 1 if files % 2 == 0 else config.jsonl_lines
                    if len(pending_s3) >= size:
                        name, upload = f"f{files:04d}", files % 4 == 1
                        placed.append(
                            pool.submit(submitter.prompt_file, list(pending_s3), name, upload=upload)
                        )
                        pending_s3.clear()
                        files += 1
            if pending_s3:
                name, upload = f"f{files:04d}", files % 4 == 1
                placed.append(pool.submit(submitter.prompt_file, list(pending_s3), name, upload=upload))
            futures += placed
            if config.redeliver_batches:
                futures.append(batches.submit(redeliver_later, submitter, placed))
    finally:
        submitter.close()
    # A crash in the soak's own threads would silently skip what it meant to do (a door, a twin):
    # each one is a bad count, with its traceback in the log.
    errors = [f.exception() for f in futures if f.exception() is not None]
    for error in errors:
        LOG.error("a soak submitting thread crashed", exc_info=error)
    return [f"{type(e).__name__}: {e}" for e in errors]


# --- observation


def scan_jobs(sb: UserSandbox) -> list[dict[str, Any]]:
    from t2v.adapters.jobs_table import plain

    table = sb.session.resource("dynamodb", endpoint_url=sb.moto_url).Table(sb.outputs["JobsTableName"])
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"ConsistentRead": True}
    while True:
        page = table.scan(**kwargs)
        items.extend(plain(i) for i in page["Items"] if i.get("kind") == "job")
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _whole(number: object) -> int:
    """A DynamoDB number attribute (a Decimal) as an int; anything else is not a counter."""
    if not isinstance(number, Decimal | int):
        raise TypeError(f"not a DynamoDB number: {number!r}")
    return int(number)


def scan_budget(sb: UserSandbox) -> dict[str, tuple[int, int]]:
    """Every day counter (`budget#<day>` and `budget#<day>#<owner>`, t2v.billing.day_key) by its key:
    (seconds charged and not refunded, seconds refunded)."""
    table = sb.session.resource("dynamodb", endpoint_url=sb.moto_url).Table(sb.outputs["JobsTableName"])
    counters: dict[str, tuple[int, int]] = {}
    kwargs: dict[str, Any] = {"ConsistentRead": True}
    while True:
        page = table.scan(**kwargs)
        for item in page["Items"]:
            if str(item["pk"]).startswith("budget#"):
                counters[str(item["pk"])] = (
                    _whole(item.get("used_seconds", 0)),
                    _whole(item.get("refunded_seconds", 0)),
                )
        if "LastEvaluatedKey" not in page:
            return counters
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def budget_verdict(records: Iterable[dict[str, Any]], counters: dict[str, tuple[int, int]]) -> dict[str, int]:
    """The budgets' bad counts from the end state: each job the refund table (t2v.billing) gives back
    has exactly one refund, and each day counter holds its jobs' charges minus their refunds.

    `refund_missed`: ended jobs owed a refund and never given one. `refund_twice`: counters given back
    more than their refunded jobs were charged (a refund applied twice). `budget_undercounted`: counters
    below their charges minus refunds. `overcount`: seconds held beyond them (0 with transactions)."""
    from t2v.adapters.jobs_table import plain
    from t2v.billing import day_key, refundable
    from t2v.jobs import JobRecord

    charged: Counter[str] = Counter()
    refunded: Counter[str] = Counter()
    bad = {"refund_missed": 0, "refund_twice": 0, "budget_undercounted": 0, "uncharged_tasks": 0}
    for item in records:
        job = JobRecord.model_validate(plain(item))
        if not job.budget_day:
            bad["uncharged_tasks"] += int(bool(job.task_id))
            continue
        keys = [day_key(job.budget_day)] + (
            [day_key(job.budget_day, job.budget_owner)] if job.budget_owner else []
        )
        for key in keys:
            charged[key] += job.billed_seconds or 0
            if job.refunded_at is not None:
                refunded[key] += job.billed_seconds or 0
        bad["refund_missed"] += int(job.status.is_terminal and refundable(job))
    overcount = 0
    for key in charged.keys() | counters.keys():
        used, given_back = counters.get(key, (0, 0))
        bad["refund_twice"] += int(given_back > refunded[key])
        expected = charged[key] - refunded[key]
        bad["budget_undercounted"] += int(used < expected)
        overcount += max(0, used - expected)
    return {**bad, "overcount": overcount}


def scan_job(sb: UserSandbox, job: PlannedJob) -> list[dict[str, Any]]:
    """The job's record, by its id (known at once for the API and EventBridge doors)."""
    from t2v.adapters.jobs_table import plain

    if job.job_id is None:
        return []
    table = sb.session.resource("dynamodb", endpoint_url=sb.moto_url).Table(sb.outputs["JobsTableName"])
    item = table.get_item(Key={"pk": job.job_id}, ConsistentRead=True).get("Item")
    return [plain(item)] if item else []


def running_executions(sb: UserSandbox) -> list[str]:
    sfn = sb.client("stepfunctions")
    names: list[str] = []
    kwargs: dict[str, Any] = {"stateMachineArn": sb.outputs["StateMachineArn"], "statusFilter": "RUNNING"}
    while True:
        page = sfn.list_executions(**kwargs)
        names.extend(e["name"] for e in page["executions"])
        if not page.get("nextToken"):
            return names
        kwargs["nextToken"] = page["nextToken"]


def execution_tail(sb: UserSandbox, job_id: str, events: int = 25) -> dict[str, Any]:
    """A bad job's execution as Step Functions kept it: its status and its last events (the history
    is gone with the sandbox; an execution that ended past every Catch shows its error here)."""
    sfn = sb.client("stepfunctions")
    arn = sb.outputs["StateMachineArn"].replace(":stateMachine:", ":execution:") + f":{job_id}"
    try:
        status = sfn.describe_execution(executionArn=arn)
        history = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=events)["events"]
    except Exception as exc:  # noqa: BLE001 - evidence only: say why there is none
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    tail = []
    for event in reversed(history):
        details = {k: v for k, v in event.items() if k.endswith("EventDetails")}
        detail: dict[str, Any] = next(iter(details.values()), {})
        tail.append(
            {
                "type": event["type"],
                "name": detail.get("name"),
                "error": detail.get("error"),
                "cause": str(detail.get("cause") or "")[:300] or None,
            }
        )
    return {
        "status": status["status"],
        "error": status.get("error"),
        "cause": str(status.get("cause") or "")[:500],
        "events": tail,
    }


def by_prompt(items: list[dict[str, Any]], prompts: set[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        prompt = (item.get("request") or {}).get("prompt")
        if prompt in prompts:
            found.setdefault(str(prompt), []).append(item)
    return found


def settle(
    sb: UserSandbox,
    jobs: list[PlannedJob],
    timeout: float,
    job_ids: frozenset[str] = frozenset(),
    *,
    batches: list[PlannedBatch] | None = None,
) -> float:
    """Wait until every planned job (and every job of `job_ids`) has a terminal record, every batch
    ended and no execution runs; returns seconds waited. A batch line with no record is done once its
    batch ended (a canceled batch's lines that never started)."""
    refused = {j.job_id for j in jobs if j.scenario == "invalid" and j.job_id}
    job_ids = frozenset(job_ids | refused)
    prompts = {j.prompt for j in jobs if not j.submit_error and j.job_id not in refused}
    batches = [b for b in batches or [] if not b.submit_error]
    line_batch = {j.prompt: j.batch.batch_id for j in jobs if j.batch is not None}
    started = time.monotonic()
    last_report = 0.0
    while True:
        items = scan_jobs(sb)
        records = by_prompt(items, prompts)
        open_batches = set(soak_batches.unended(sb, batches))
        done = sum(
            1
            for p in prompts
            if (p in records and all(r["status"] in TERMINAL for r in records[p]))
            or (p not in records and p in line_batch and line_batch[p] not in open_batches)
        )
        done += sum(1 for i in items if i["pk"] in job_ids and i["status"] in TERMINAL)
        running = running_executions(sb) + soak_batches.running_batch_executions(sb)
        elapsed = time.monotonic() - started
        if done == len(prompts) + len(job_ids) and not running and not open_batches:
            return elapsed
        if elapsed - last_report >= 10:
            total = len(prompts) + len(job_ids)
            LOG.info(
                "soak: %d/%d jobs ended, %d batches open, %d executions running",
                done,
                total,
                len(open_batches),
                len(running),
            )
            last_report = elapsed
        if elapsed >= timeout:
            LOG.warning("soak: gave up waiting after %.0f s", elapsed)
            return elapsed
        time.sleep(1.0)


# --- the verdict


def _create_answers(requests: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    answers: dict[str, list[dict[str, Any]]] = {}
    for record in requests:
        if record["endpoint"] == "create" and record.get("prompt"):
            answers.setdefault(str(record["prompt"]), []).append(record)
    return answers


def expected_outcome(
    job: PlannedJob, tasks: list[dict[str, Any]], creates: list[dict[str, Any]], emulator: Any
) -> tuple[str, str | None, str]:
    """(status, error code or None for "any", why) from what the provider did, never from the pipeline."""
    if job.scenario == "invalid":
        return "FAILED", "InvalidRequest", "invalid request: never sent"
    if any(t["canceled"] for t in tasks) or (job.cancel_status == 200 and not tasks):
        return "CANCELED", None, "canceled by the user (its task, if any, canceled at the provider)"
    if tasks:
        task = emulator.task(tasks[0]["task_id"])
        outcomes = {
            "failed": ("FAILED", str(task.fail_code), f"task FAILED ({task.fail_code})"),
            "no_video": ("FAILED", "NoVideo", "task SUCCEEDED without a video"),
        }
        return outcomes.get(task.outcome, ("SUCCEEDED", None, "task SUCCEEDED with a video"))
    if not creates:
        return "FAILED", None, "no create reached the provider"
    last = creates[-1]
    status = last.get("status")
    if status is not None and status >= 400 and status not in RETRYABLE_STATUSES:
        return "FAILED", str(last.get("code")), f"create refused ({last.get('code')})"
    return "FAILED", None, "every create failed transiently; retries exhausted"


@dataclass
class Evidence:
    """Everything observed after the run: the pipeline's side and the provider's own record."""

    records: dict[str, list[dict[str, Any]]]
    tasks: dict[str, list[dict[str, Any]]]
    creates: dict[str, list[dict[str, Any]]]
    messages: dict[str, list[dict[str, Any]]]
    events: dict[str, list[dict[str, Any]]]  # EventBridge completion events by job id
    by_id: dict[str, dict[str, Any]]  # every job record by job id


class Judge:
    def __init__(
        self, sb: UserSandbox, jobs: list[PlannedJob], subscriber: Subscriber, tap: EventTap
    ) -> None:
        self.sb = sb
        self.jobs = jobs
        self.subscriber, self.tap = subscriber, tap
        self.emulator = sb.emulator
        from dashscope_emulator.server import api_key_id

        ours = api_key_id(sb.config.emulator_api_key)
        every = self.emulator.tasks()
        # Only the pipeline's own tasks count as its tasks; the other client's are what it must not take.
        self.all_tasks = [t for t in every if t["api_key_id"] == ours]
        self.foreign_tasks = {t["task_id"] for t in every if t["api_key_id"] != ours}
        tasks: dict[str, list[dict[str, Any]]] = {}
        for task in self.all_tasks:
            tasks.setdefault(task["prompt"], []).append(task)
        messages: dict[str, list[dict[str, Any]]] = {}
        for message in subscriber.drain():
            messages.setdefault(str(message["message"].get("job_id")), []).append(message)
        items = scan_jobs(sb)
        self.evidence = Evidence(
            records=by_prompt(items, {j.prompt for j in jobs}),
            tasks=tasks,
            creates=_create_answers([r for r in self.emulator.requests() if r.get("api_key_id") == ours]),
            messages=messages,
            events=tap.by_job(),
            by_id={str(i["pk"]): i for i in items},
        )
        self.counts: Counter[str] = Counter()
        self.s3 = sb.client("s3")

    def run(self) -> tuple[dict[str, Any], list[Verdict]]:
        verdicts = [self.check(job) for job in self.jobs]
        prompts = {j.prompt for j in self.jobs}
        self.counts["duplicate_tasks"] += len({t["prompt"] for t in self.all_tasks} - prompts)  # nobody asked
        self.counts["stuck"] = len(running_executions(self.sb)) + len(
            soak_batches.running_batch_executions(self.sb)
        )
        summary: dict[str, Any] = {
            "jobs": len(self.jobs),
            "succeeded": self.counts["succeeded"],
            "failed_as_expected": self.counts["failed_as_expected"],
        }
        summary.update({key: self.counts[key] for key in BAD_KEYS})
        summary.update(self.check_capacity())
        summary["contested_tasks"] = self.counts["contested_tasks"]
        summary["budget_overcount"] = self.check_budget()
        # Copies from an announcer that died between publishing and marking it (not bad: see above).
        summary["redelivered_notifications"] = self.counts["redelivered_notifications"]
        summary["redelivered_events"] = self.counts["redelivered_events"]
        summary["cancels"] = dict(Counter(str(j.cancel_status) for j in self.jobs if j.scenario == "cancel"))
        summary["foreign_tasks"] = len(self.foreign_tasks)
        summary["creates"] = len(self.all_tasks)  # each create that reached the provider made one task
        summary["jobs_with_task"] = sum(1 for j in self.jobs if self.evidence.tasks.get(j.prompt))
        summary["image_jobs"] = {k: self.counts[f"image_{k}"] for k in IMAGE_SCENARIOS}
        return summary, verdicts

    def check_capacity(self) -> dict[str, Any]:
        """The provider never above its cap; no lease or queue place left once every job ended."""
        seen = self.emulator.capacity()
        cap, mode = seen["max_running_tasks"], seen["over_cap"]
        peak = seen["max_running"] if mode == "queue" else seen["max_in_flight"]
        self.counts["provider_above_cap"] = int(cap is not None and peak > cap)
        table = self.sb.session.resource("dynamodb", endpoint_url=self.sb.moto_url).Table(
            self.sb.outputs["JobsTableName"]
        )
        item: dict[str, Any] = (
            table.get_item(Key={"pk": "capacity#account"}, ConsistentRead=True).get("Item") or {}
        )
        queued = sum(int(n) for n in dict(item.get("queued") or {}).values())
        self.counts["leaked_leases"] = len(item.get("leases") or {}) + queued
        return {
            "provider_cap": cap,
            "provider_over_cap": mode,
            "provider_peak": peak,
            "capacity_refusals": seen["capacity_refusals"],
            "learned_cap": int(item["cap"]) if "cap" in item else None,
            "failed_for_capacity": self.counts["failed_for_capacity"],
            "provider_above_cap": self.counts["provider_above_cap"],
            "leaked_leases": self.counts["leaked_leases"],
        }

    def owner(self, task_id: str) -> str | None:
        table = self.sb.session.resource("dynamodb", endpoint_url=self.sb.moto_url).Table(
            self.sb.outputs["JobsTableName"]
        )
        item = table.get_item(Key={"pk": f"task#{task_id}"}, ConsistentRead=True).get("Item")
        return str(item["job_id"]) if item else None

    def check_budget(self) -> int:
        """Every job with a task was charged, each refunded ending refunded once, and every day counter
        (the account's, each caller's) holds its charges minus its refunds (`budget_verdict`); the
        seconds held beyond them are returned, not bad."""
        verdict = budget_verdict(self.evidence.by_id.values(), scan_budget(self.sb))
        for key in ("uncharged_tasks", "budget_undercounted", "refund_twice", "refund_missed"):
            self.counts[key] += verdict[key]
        return verdict["overcount"]

    def bad(self, verdict: Verdict, key: str, problem: str, count: int = 1) -> None:
        self.counts[key] += count
        verdict.problems.append(problem)

    def check(self, job: PlannedJob) -> Verdict:
        ev = self.evidence
        tasks = ev.tasks.get(job.prompt, [])
        status, code, why = expected_outcome(job, tasks, ev.creates.get(job.prompt, []), self.emulator)
        verdict = Verdict(job, f"{status}{f' {code}' if code else ''} ({why})", "-")
        self.check_images(verdict, ev.creates.get(job.prompt, []))
        if len(tasks) > 1:
            self.bad(verdict, "duplicate_tasks", f"{len(tasks)} provider tasks", len(tasks) - 1)
            # A task more than one lost create may have made, which the pipeline marked contested rather
            # than guess: always one that ended without a video (a SUCCEEDED task shows its prompt).
            self.counts["contested_tasks"] += sum(1 for t in tasks if self.owner(t["task_id"]) == "contested")
        found = ev.records.get(job.prompt, [])
        if not found and job.job_id in ev.by_id:  # a refused request: its record keeps no prompt
            found = [ev.by_id[job.job_id]]
        if job.submit_error or not found:
            self.lost(verdict, tasks)
            return verdict
        if len(found) > 1:
            self.bad(verdict, "duplicate_jobs", f"{len(found)} job records", len(found) - 1)
        record = found[0]
        verdict.actual = f"{record['status']} {record.get('error_code') or ''}".strip()
        if record["status"] not in TERMINAL:
            self.bad(verdict, "lost", "never ended")
            return verdict
        if record["status"] in {"FAILED", "TIMED_OUT"} and record.get("error_code") in CAPACITY_ENDINGS:
            self.bad(verdict, "failed_for_capacity", f"ended {record['status']} {record.get('error_code')}")
        self.check_account(verdict, record, tasks)
        terminal = [h for h in record.get("history", []) if h["status"] in TERMINAL]
        if len(terminal) != 1:
            self.bad(verdict, "multiple_terminal", f"history has {len(terminal)} terminal entries")
        self.check_status(verdict, record, status, code, lost_cancel=job.cancel_maybe and not tasks)
        self.check_flood(verdict, record, status, code)
        if len(tasks) == 1 and record.get("task_id") != tasks[0]["task_id"]:
            self.bad(verdict, "wrong_status", f"bound to {record.get('task_id')}, not {tasks[0]['task_id']}")
        if not tasks and record.get("task_id"):
            self.bad(verdict, "wrong_status", f"bound to {record.get('task_id')}, another job's task")
        if record["status"] == "SUCCEEDED" and tasks:
            self.check_video(verdict, record, tasks[0]["task_id"])
        self.check_notifications(verdict, record)
        if not verdict.problems:
            self.counts["succeeded" if record["status"] == "SUCCEEDED" else "failed_as_expected"] += 1
        else:
            verdict.evidence = {
                "records": found,
                "tasks": tasks,
                "creates": ev.creates.get(job.prompt, []),
                "notifications": ev.messages.get(str(record["pk"]), []),
                "execution": execution_tail(self.sb, str(record["pk"])),
            }
        return verdict

    def lost(self, verdict: Verdict, tasks: list[dict[str, Any]]) -> None:
        """No record: lost, unless the job is a line its canceled batch never started (the cancel
        answered 200, or its answer was lost) and the provider never saw it."""
        job = verdict.job
        batch = job.batch
        never_started = batch is not None and batch.kind == "cancel" and job.cancel_status in {200, None}
        if never_started and not job.submit_error and not tasks:
            verdict.expected, verdict.actual = "CANCELED (its batch canceled before it started)", "no job"
            self.counts["failed_as_expected"] += 1
            return
        self.bad(verdict, "lost", f"submit failed: {job.submit_error}" if job.submit_error else "no record")

    def check_images(self, verdict: Verdict, creates: list[dict[str, Any]]) -> None:
        """A refused image never reaches the provider; a good one always does (the image scenarios)."""
        scenario = verdict.job.scenario
        if scenario == "badimage" and creates:
            self.bad(
                verdict, "wrong_status", f"a refused image reached the provider ({len(creates)} creates)"
            )
        if scenario in {"it2v", "kf2v", "imgfetch"} and not creates:
            self.bad(verdict, "wrong_status", "a good image job never reached the provider")
        if scenario in IMAGE_SCENARIOS:
            self.counts[f"image_{scenario}"] += 1

    def check_status(
        self, verdict: Verdict, record: dict[str, Any], status: str, code: str | None, *, lost_cancel: bool
    ) -> None:
        """The status (and code) the provider's record implies; CANCELED is right too for a job with no
        task that a DELETE with a lost answer may have canceled."""
        if record["status"] == "CANCELED" and lost_cancel:
            verdict.expected += " or CANCELED (a DELETE whose answer was lost)"
        elif record["status"] != status or (code is not None and record.get("error_code") != code):
            self.bad(verdict, "wrong_status", f"expected {verdict.expected}, got {verdict.actual}")

    def check_flood(self, verdict: Verdict, record: dict[str, Any], status: str, code: str | None) -> None:
        """A flooded job ends as the provider says, with no more push ids than the bound."""
        if verdict.job.flooded:
            for key, problem in flood_problems(record, status, code).items():
                self.bad(verdict, key, problem)

    def check_account(self, verdict: Verdict, record: dict[str, Any], tasks: list[dict[str, Any]]) -> None:
        """A canceled job leaves no task of its own running; no job takes another client's task."""
        if record["status"] == "CANCELED" and any(t["status"] != "CANCELED" for t in tasks):
            live = [t["task_id"] for t in tasks if t["status"] != "CANCELED"]
            self.bad(verdict, "cancelled_live_tasks", f"CANCELED while its tasks {live} were not")
        if record.get("task_id") in self.foreign_tasks:
            self.bad(verdict, "foreign_adoptions", f"bound to {record['task_id']}, another client's task")

    def check_video(self, verdict: Verdict, record: dict[str, Any], task_id: str) -> None:
        media = self.emulator.wait_media(task_id, timeout=30)
        want = hashlib.sha256(media.read_bytes()).hexdigest() if media else None
        try:
            body = self.s3.get_object(Bucket=record["s3_bucket"], Key=record["s3_key"])["Body"].read()
            got = hashlib.sha256(body).hexdigest()
        except Exception as exc:  # noqa: BLE001 - a missing object is a finding, not a crash
            got = f"unreadable: {exc}"
        if got != want or record.get("sha256") != want:
            self.bad(verdict, "bad_video", "the S3 object is not the provider's video")

    def check_notifications(self, verdict: Verdict, record: dict[str, Any]) -> None:
        if verdict.job.batch is not None:
            return  # a quiet batch line: soak_batches counts any announcement of it as bad
        notes = self.evidence.messages.get(str(record["pk"]), [])
        # SNS and EventBridge cannot deduplicate: an announcer killed after the publish and before its
        # mark leaves the claim to the next one, which publishes again (t2v.usecases.announce). Each
        # claim is counted on the record (`notify_attempts`): more copies than claims, or copies
        # that differ in their notification_id, are duplicates; up to one per claim is that window.
        claims = int(record.get("notify_attempts") or 1)
        if not notes:
            self.bad(verdict, "missing_notifications", "no SNS notification")
        elif len(notes) > 1:
            ids = sorted({str(n["message"].get("notification_id")) for n in notes})
            if len(ids) == 1 and len(notes) <= claims:
                self.counts["redelivered_notifications"] += len(notes) - 1
                verdict.evidence.setdefault("redelivered", []).append(
                    f"{len(notes)} SNS copies, {claims} claims"
                )
            else:
                self.bad(
                    verdict,
                    "duplicate_notifications",
                    f"{len(notes)} SNS notifications {ids}",
                    len(notes) - 1,
                )
        if any(n["message"].get("status") != record["status"] for n in notes):
            self.bad(verdict, "wrong_status", "a notification's status differs from the record")
        events = self.evidence.events.get(str(record["pk"]), [])
        if not events:
            self.bad(verdict, "missing_events", "0 EventBridge completion events")
        elif len(events) > 1:
            if len(events) <= claims:
                self.counts["redelivered_events"] += len(events) - 1
                verdict.evidence.setdefault("redelivered", []).append(
                    f"{len(events)} events, {claims} claims"
                )
            else:
                self.bad(verdict, "duplicate_events", f"{len(events)} EventBridge completion events")
        if any(e["detail"].get("status") != record["status"] for e in events):
            self.bad(verdict, "wrong_status", "a completion event's status differs from the record")


# --- report


def fault_totals(sb: UserSandbox) -> dict[str, int]:
    """How often each kind of emulator fault fired, e.g. {"create error Throttling": 7}."""
    plan = sb.emulator.faults()
    fired = sb.emulator.fault_counts()
    totals: Counter[str] = Counter()
    for rule, count in zip(plan.rules, fired, strict=True):
        name = rule.kind if rule.kind != "error" else f"error {rule.code}"
        totals[f"{rule.endpoint or ''} {name}".strip()] += count
    return dict(totals)


def push_totals(sb: UserSandbox) -> dict[str, Any]:
    """Whether push was on, and what the emulator's deliveries got back from the callback route."""
    attempts = [p for p in sb.emulator.pushes() if p["fault"] != "push_dropped"]
    return {
        "push": sb.push_enabled,
        "push_deliveries": len(attempts),
        "push_accepted": sum(1 for p in attempts if p["http_status"] and 200 <= p["http_status"] < 300),
        "push_refused": sum(1 for p in attempts if p["http_status"] == 401),
    }


def fault_table(sb: UserSandbox) -> list[str]:
    totals = fault_totals(sb)
    stats = sb.fault_stats()
    lines = ["injected fault                       fired"]
    lines += [f"  {name:<34} {count:>5}" for name, count in sorted(totals.items())]
    lines.append(f"  {'sandbox duplicate deliveries':<34} {stats['duplicate_deliveries']:>5}")
    for name, count in sorted(stats["kills_by_function"].items()):
        lines.append(f"  {'sandbox worker kill ' + name:<34} {count:>5}")
    return lines


def outcome_table(verdicts: list[Verdict]) -> list[str]:
    rows: Counter[tuple[str, str, str]] = Counter()
    for v in verdicts:
        rows[(v.job.door, v.expected.split(" (")[0], "ok" if not v.problems else "BAD")] += 1
    lines = [f"{'door':<12} {'expected (from the provider record)':<40} {'verdict':<7} {'jobs':>5}"]
    for (door, expected, ok), count in sorted(rows.items()):
        lines.append(f"{door:<12} {expected:<40} {ok:<7} {count:>5}")
    return lines


def run_soak(config: SoakConfig) -> dict[str, Any]:
    """Start a sandbox with faults on, run the jobs, judge them; returns the summary (with `report`)."""
    from t2v_sandbox.user_sandbox import config_for

    started = time.monotonic()
    sandbox_config = config_for(
        config.template,
        work_dir=config.work_dir,
        overrides={
            "PollIntervalSeconds": "1",
            "DailyBudgetSeconds": str(BUDGET_SECONDS),
            "CallerDailyBudgetSeconds": str(CALLER_BUDGET_SECONDS),
            "RefundsEnabled": "true",
            "ProviderMaxTasksInFlight": str(config.governor_ceiling),
            "CapacityHeartbeatSeconds": str(config.capacity_heartbeat_seconds),
        },
        pending_seconds=config.pending_seconds,
        running_seconds=config.running_seconds,
        write_endpoints=False,
    )
    sandbox_config.time_scale = config.time_scale
    sandbox_config.emulator_max_running_tasks = config.emulator_max_running_tasks
    sandbox_config.emulator_over_cap = config.emulator_over_cap
    sandbox_config.duplicate_deliveries = config.duplicate_deliveries
    sandbox_config.kill_rate = config.kill_rate
    sandbox_config.kill_seed = config.seed
    if config.kill_rate > 0:
        sandbox_config.kill_rates = {"BatchFunction": config.batch_kill_rate}
    sandbox_config.max_workers_per_function = config.max_workers_per_function
    # The functions' margin for the provider's clock must cover the skew the emulator is given.
    sandbox_config.function_environment = {
        **sandbox_config.function_environment,
        "PROVIDER_CLOCK_SKEW_SECONDS": str(round(config.clock_skew_seconds + 0.4, 3)),
    }
    run = uuid.uuid4().hex[:6]
    jobs = plan_jobs(config.jobs, config.seed, run=run)
    hostile = plan_hostile(jobs, config, run)
    plan_cancel_batch(jobs, config, run)
    book = BatchBook()
    with UserSandbox(sandbox_config) as sb:
        if sb.emulator is None:
            raise RuntimeError("the soak runs against the emulator only (unset DASHSCOPE_API_KEY)")
        sb.emulator.set_faults(fault_plan(config.seed, background=config.background_faults))
        sb.emulator.config.clock_offset_seconds = config.clock_skew_seconds
        if config.twins:
            # A busy account: the other client's tasks, dated after every create of the run and within
            # the hour the old reconciliation listed newest first, so they would have hidden ours.
            sb.emulator.add_tasks(
                BUSY_ACCOUNT_TASKS,
                prompt="another client's busy hour",
                api_key=OTHER_CLIENT_KEY,
                created=sb.emulator.now() + 1500,
                spread_seconds=600,
            )
        subscriber = Subscriber.attach(sb, topic_arn(sb), name="t2v-soak-outcomes")
        tap = EventTap.attach(
            sb,
            name="t2v-soak-events",
            detail_types=(*COMPLETION_DETAIL_TYPES, soak_batches.BATCH_DETAIL_TYPE),
        )
        flood = start_flood(sb, jobs, run)
        harness_errors = submit_all(sb, jobs, config, hostile, book=book, run=run)
        refused = frozenset(f.job_ids[line.number] for f in hostile for line in f.lines if line.reason)
        settle(sb, jobs, config.settle_timeout, refused, batches=book.placed())
        flooded = flood.stop() if flood is not None else FloodStats()
        time.sleep(1.0)  # a duplicate notification would follow right behind the first
        judge = Judge(sb, jobs, subscriber, tap)
        summary, verdicts = judge.run()
        file_problems = file_verdicts(sb, judge, hostile, book, summary)
        summary["harness_errors"] = len(harness_errors)
        summary["twins"] = sum(1 for j in jobs if j.twin_created)
        summary["watch"] = watch_totals(jobs)
        summary["events"] = sum(len(e) for k, e in judge.evidence.events.items() if k != "None")
        summary["seconds"] = round(time.monotonic() - started, 1)
        summary.update({k: v for k, v in sb.fault_stats().items() if k != "kills_by_function"})
        summary.update(push_totals(sb))
        summary["push_flood"] = flooded.as_dict()
        summary["faults"] = fault_totals(sb)
        details = config.work_dir / "soak-jobs.jsonl"
        details.parent.mkdir(parents=True, exist_ok=True)
        details.write_text(
            "".join(
                json.dumps(
                    {
                        "index": v.job.index,
                        "door": v.job.door,
                        "scenario": v.job.scenario,
                        "job_id": v.job.job_id,
                        "expected": v.expected,
                        "actual": v.actual,
                        "problems": v.problems,
                        **({"cancel_answers": v.job.cancel_answers} if v.job.cancel_answers else {}),
                        **({"evidence": v.evidence} if v.evidence else {}),
                    },
                    default=str,
                )
                + "\n"
                for v in verdicts
            )
        )
        summary["report"] = [
            *outcome_table(verdicts),
            "",
            *fault_table(sb),
            "",
            *[f"BAD {v.job.door} {v.job.prompt}: {'; '.join(v.problems)}" for v in verdicts if v.problems],
            *file_problems,
            *[f"BAD harness {error}" for error in harness_errors],
        ]
    return summary


def file_verdicts(
    sb: UserSandbox,
    judge: Judge,
    hostile: list[soak_hostile.HostileFile],
    book: BatchBook,
    summary: dict[str, Any],
) -> list[str]:
    """The hostile files' lines and the batches, added to `summary`; their problems, for the report."""
    lines = soak_hostile.judge(hostile, judge.evidence.by_id, judge.evidence.messages, judge.evidence.events)
    for key, count in lines.counts.items():
        summary[key] = summary.get(key, 0) + count
    batches = batch_verdict(sb, judge, book)
    summary.update(batches.summary)
    summary["wrong_status"] += batches.counts["wrong_status"]
    return [
        *[f"BAD s3-hostile {problem}" for problem in lines.problems],
        *[f"BAD {problem}" for problem in batches.problems],
    ]


def batch_verdict(sb: UserSandbox, judge: Judge, book: BatchBook) -> soak_batches.BatchVerdict:
    """The batches' own verdict (`soak_batches.BatchJudge`) from what the Judge gathered."""
    from dashscope_emulator.server import api_key_id

    ours = api_key_id(sb.config.emulator_api_key)
    requests = [r for r in sb.emulator.requests() if r.get("api_key_id") == ours]
    kills = sb.fault_stats()["kills_by_function"].get("BatchFunction", 0)
    return soak_batches.BatchJudge(
        soak_batches.batch_records(sb, book.placed()),
        soak_batches.s3_reader(sb),
        book.batches,
        messages=judge.subscriber.drain(),
        events=judge.tap.drain(),
        jobs=judge.evidence.by_id,
        tasks=judge.evidence.tasks,
        creates=soak_batches.create_times(requests),
        batch_kills=int(kills),
    ).run()


def start_flood(sb: UserSandbox, jobs: list[PlannedJob], run: str) -> PushFlood | None:
    """Push on: flood the callback for the tasks of the jobs of FLOODED_SCENARIOS as they appear."""
    url = sb.callback_url()
    if not sb.push_enabled or url is None:
        return None
    secret = sb.client("secretsmanager").get_secret_value(SecretId=sb.physical_id("CallbackSecret"))
    emulator = sb.emulator

    def flooded(job: PlannedJob) -> Any:
        return lambda: setattr(job, "flooded", True)

    targets = {j.prompt: flooded(j) for j in jobs if j.scenario in FLOODED_SCENARIOS}
    return PushFlood(
        url=url, token=secret["SecretString"], tasks=emulator.tasks, targets=targets, run=run
    ).start()


def watch_totals(jobs: Iterable[PlannedJob]) -> dict[str, int]:
    """What the users watching jobs by id saw: reads, and how many jobs showed PENDING or RUNNING
    while they ran (the API's own look; with push on, nothing else would show them)."""
    watched = [j for j in jobs if j.watch_statuses]
    return {
        "jobs": len(watched),
        "reads": sum(len(j.watch_statuses) for j in watched),
        "saw_running": sum(1 for j in watched if "RUNNING" in j.watch_statuses),
        "saw_pending": sum(1 for j in watched if "PENDING" in j.watch_statuses),
        "errors": sum(
            1 for j in watched for st in j.watch_statuses if not st.isupper() or st.startswith("HTTP")
        ),
    }


def bad_total(summary: dict[str, Any]) -> int:
    return sum(int(summary.get(key, 0)) for key in BAD_KEYS)


def _command(args: argparse.Namespace) -> int:
    config = SoakConfig(
        jobs=args.jobs,
        seed=args.seed,
        template=Path(args.template),
        kill_rate=args.kill_rate,
        submit_rate=args.rate,
        emulator_max_running_tasks=args.emulator_max_running_tasks,
        emulator_over_cap=args.emulator_over_cap,
    )
    for noisy in ("moto", "httpx", "werkzeug"):
        # moto logs every failed execution (expected here) at ERROR; the verdict says what matters.
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    try:
        summary = run_soak(config)
    except MotoVersionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = summary.pop("report")
    summary.pop("faults")  # already in the table
    print("\n".join(report))
    print(json.dumps(summary, sort_keys=False))
    return 1 if bad_total(summary) else 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("soak", help="fault soak: many jobs under injected faults, then a verdict")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--template", default="template.yaml")
    parser.add_argument("--kill-rate", type=float, default=SoakConfig.kill_rate)
    parser.add_argument("--rate", type=float, default=SoakConfig.submit_rate, help="jobs started per second")
    parser.add_argument(
        "--emulator-max-running-tasks",
        type=int,
        default=SoakConfig.emulator_max_running_tasks,
        metavar="N",
        help="the emulated account's cap (below the soak's concurrency)",
    )
    parser.add_argument(
        "--emulator-over-cap", choices=("refuse", "queue"), default=SoakConfig.emulator_over_cap
    )
    parser.set_defaults(func=_command)
