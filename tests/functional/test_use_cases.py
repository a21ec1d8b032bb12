"""The pipeline's use cases end to end on in-memory fakes: what a user sees (job status, stored
video, messages, provider tasks) for submit -> poll -> finalize, the failure paths and reconciliation."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from t2v.capacity import MAX_PUSH_WAKES
from t2v.config import FinalizeSettings, ProviderSettings
from t2v.contract import Ended, PollDecision, PollTurn, SubmitInput, Succeeded
from t2v.errors import AmbiguousCreateError, CreateInProgressError, JobAlreadyFinishedError
from t2v.jobs import FOREIGN, JobRecord, JobStatus
from t2v.provider import CreatedTask
from t2v.request import InvalidRequestError, RequestBase
from t2v.times import iso
from t2v.usecases.announce import AnnounceDeps, end_job
from t2v.usecases.finalize import FinalizeDeps, finalize_job
from t2v.usecases.poll import poll_job
from t2v.usecases.ports import ProviderDeps
from t2v.usecases.submit import submit_job
from t2v_bench.ledger import MemoryPollStats  # from its home: tests.fakes re-exports it only implicitly

from tests.fakes import (
    FakeClock,
    FakeDownloader,
    FakeImages,
    FakeJobs,
    FakeNotifier,
    FakeProvider,
    FakeRepos,
    FakeStore,
)
from tests.images import png

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
URL = "https://media.pixverseai.cn/v.mp4"


@dataclass
class World:
    clock: FakeClock
    repos: FakeRepos
    provider: FakeProvider
    notifier: FakeNotifier
    store: FakeStore
    stats: MemoryPollStats
    pipeline: ProviderDeps
    finalize: FinalizeDeps

    @property
    def announce(self) -> AnnounceDeps:
        return self.finalize.announce

    @property
    def repo(self) -> FakeJobs:
        return self.repos.jobs

    def job(self, job_id: str) -> dict[str, Any]:
        return self.repos.table.items[job_id]


@pytest.fixture
def world() -> World:
    clock, repos, notifier, store, stats = (
        FakeClock(),
        FakeRepos(),
        FakeNotifier(),
        FakeStore(),
        MemoryPollStats(),
    )
    provider = FakeProvider(clock=clock)
    env = {"JOBS_TABLE": "jobs", "DASHSCOPE_SECRET_ID": "s", "OUTPUT_BUCKET": "videos", "TOPIC_ARN": "arn:t"}
    pipeline = ProviderDeps(
        repo=repos.jobs,
        tasks=repos.tasks,
        budget=repos.budget,
        client=lambda: provider,
        settings=ProviderSettings.from_env(env),
        clock=clock,
        rng=random.Random(7),
        stats=stats,
        sleep=clock.advance,
    )
    announce = AnnounceDeps(
        repo=repos.jobs,
        announcements=repos.announcements,
        notifier=notifier,
        clock=clock,
        sleep=clock.advance,
    )
    finalize = FinalizeDeps(
        announce=announce,
        store=store,
        downloader=FakeDownloader({URL: VIDEO}),
        settings=FinalizeSettings.from_env(env),
        stats=stats,
        clock=clock,
    )
    return World(clock, repos, provider, notifier, store, stats, pipeline, finalize)


def submit(world: World, job_id: str = "job-1", **request: Any) -> PollTurn:
    event = SubmitInput(
        job_id=job_id, request={"prompt": "a cat", "size": "640*360", **request}, source="test"
    )
    turn = submit_job(event, world.pipeline)
    assert isinstance(turn, PollTurn), turn  # no capacity governor here: never a capacity wait
    return turn


def submit_after_index_lag(world: World) -> PollTurn:
    """Submit as Step Functions' retries do after a lost create answer: the first look finds the only
    candidate task too young for the index to show every rival create (UNDECIDED, retried); the
    retry, once the index has caught up, adopts it."""
    with pytest.raises(AmbiguousCreateError):
        submit(world)
    wait_out_index_lag(world)
    return submit(world)


def wait_out_index_lag(world: World) -> None:
    """Past the by_created index's lag, with the provider's clock margin on top."""
    settings = world.pipeline.settings
    world.clock.advance(settings.index_lag_seconds + settings.provider_clock_skew_seconds + 0.1)


def poll(turn: PollTurn, deps: ProviderDeps) -> PollTurn:
    result = poll_job(turn, deps)
    assert isinstance(result, PollTurn), result
    return result


def poll_until_decided(world: World, turn: PollTurn, *, limit: int = 50) -> PollTurn:
    """The state machine's loop: wait the turn's seconds, poll, until the decision is not WAIT."""
    for _ in range(limit):
        world.clock.advance(turn.wait_seconds)
        turn = poll(turn, world.pipeline)
        if turn.decision != PollDecision.WAIT:
            return turn
    raise AssertionError(f"still waiting after {limit} turns: {turn}")


def record(world: World, job_id: str = "job-1", prompt: str = "a cat") -> JobRecord:
    """A job recorded now (ACCEPTED), as a door records it."""
    now = world.clock()
    job, _ = world.repo.create_if_absent(
        job_id, request={"prompt": prompt}, source="test", origin={}, now=now, deadline_at=now
    )
    return job


def count_reads(world: World, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The job ids the use cases read (FakeJobs.get), in order."""
    reads: list[str] = []
    get = world.repo.get

    def counted(job_id: str) -> JobRecord | None:
        reads.append(job_id)
        return get(job_id)

    monkeypatch.setattr(world.repo, "get", counted)
    return reads


def test_a_job_runs_from_submit_to_a_stored_video_announced_once(world: World) -> None:
    # Given a submitted job whose task the provider finishes after a while
    turn = submit(world)
    task_id = turn.task_id
    world.clock.advance(20)
    times = {"submit_time": "2026-11-23 20:00:00.000", "scheduled_time": "2026-11-23 20:00:02.000"}
    world.provider.finish(
        task_id, "SUCCEEDED", video_url=URL, times={**times, "end_time": "2026-11-23 20:00:30.000"}
    )

    # When the loop polls and finalize runs on its outcome
    done = poll_until_decided(world, turn)
    assert done.decision == PollDecision.SUCCEEDED and isinstance(done.outcome, Succeeded)
    result = finalize_job("job-1", done.outcome, world.finalize)

    # Then the job SUCCEEDED with the video in S3, one message and one event, and one task was made
    job = world.job("job-1")
    assert (result.status, job["status"]) == (JobStatus.SUCCEEDED, "SUCCEEDED")
    assert world.store.objects[("videos", "videos/job-1.mp4")] == VIDEO
    assert job["sha256"] == hashlib.sha256(VIDEO).hexdigest()
    metadata = json.loads(world.store.objects[("videos", "videos/job-1.json")])
    assert (metadata["task_id"], metadata["video"]["bytes"]) == (task_id, len(VIDEO))
    assert [m["status"] for m in world.notifier.messages] == ["SUCCEEDED"]
    assert [e["status"] for e in world.notifier.events] == ["SUCCEEDED"]
    assert world.notifier.messages[0]["video"]["uri"] == "s3://videos/videos/job-1.mp4"
    assert world.provider.creates == 1 and world.repos.table.active == 0
    # And the tier learned the provider's queue and run times
    [learned] = world.stats.histories.values()
    assert (learned.queue, learned.run) == ((2.0,), (28.0,))


def test_finalize_and_its_retry_read_the_job_once_each(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    turn = submit(world)
    world.provider.finish(turn.task_id, "SUCCEEDED", video_url=URL)
    done = poll_until_decided(world, turn)
    assert isinstance(done.outcome, Succeeded)
    reads = count_reads(world, monkeypatch)

    finalize_job("job-1", done.outcome, world.finalize)
    again = finalize_job("job-1", done.outcome, world.finalize)

    assert reads == ["job-1", "job-1"]  # the writes return the job they made
    assert again.status == JobStatus.SUCCEEDED and len(world.notifier.messages) == 1


@pytest.mark.parametrize(
    ("provider_status", "fields", "decision", "status", "code"),
    [
        (
            "FAILED",
            {"code": "DataInspectionFailed", "message": "inappropriate"},
            "FAILED",
            "FAILED",
            "DataInspectionFailed",
        ),
        ("SUCCEEDED", {}, "FAILED", "FAILED", "NoVideo"),
        ("CANCELED", {}, "CANCELED", "CANCELED", "Canceled"),
    ],
)
def test_a_task_that_ends_without_a_video_ends_the_job_with_the_reason(
    world: World, provider_status: str, fields: dict[str, Any], decision: str, status: str, code: str
) -> None:
    turn = submit(world)
    world.provider.finish(turn.task_id, provider_status, **fields)

    done = poll_until_decided(world, turn)
    assert done.decision == decision and isinstance(done.outcome, Ended)
    end_job("job-1", done.outcome, world.announce)

    job = world.job("job-1")
    assert (job["status"], job["error_code"]) == (status, code)
    [message] = world.notifier.messages
    assert message["error"]["code"] == code and "video" not in message
    assert world.store.objects == {} and world.repos.table.active == 0


def test_a_task_past_the_deadline_ends_timed_out_after_one_last_look(world: World) -> None:
    # Given a task still unfinished at the deadline (issue 12, finding 7: look once before giving up)
    turn = submit(world)
    queries = world.provider.queries
    world.clock.advance(world.pipeline.settings.deadline_seconds + 1)

    late = poll(turn, world.pipeline)

    assert late.decision == PollDecision.TIMED_OUT and world.provider.queries == queries + 1
    assert isinstance(late.outcome, Ended)
    end_job("job-1", late.outcome, world.announce)
    assert world.job("job-1")["status"] == "TIMED_OUT"


def test_a_lost_create_answer_is_reconciled_to_the_one_task_it_made(world: World) -> None:
    # Given a create that made its task and lost the answer
    world.provider.lose_next_answer = True

    # When submit reconciles: the one task the provider made while our create was in flight
    turn = submit_after_index_lag(world)

    # Then it is bound to the job, and no second (billed) task is created
    assert turn.task_id == "task-1" and world.provider.creates == 1
    assert world.job("job-1")["reconciled"] is True


def lost_create(world: World, *, claimed_ago: float, answered: bool) -> None:
    """job-1 as a create left it `claimed_ago` seconds ago: sent, its task made, the answer lost
    (`answered`: the loss was recorded; else the invocation died waiting)."""
    sent = record(world).created_at
    assert sent is not None
    world.repo.claim_create("job-1", now=sent, stale_before=sent)
    world.repo.update_fields("job-1", {"create_sent_at": iso(sent)}, now=sent)
    world.provider.add_task("task-lost", "PENDING", prompt="a cat")
    world.clock.advance(1)
    if answered:
        world.repo.update_fields("job-1", {"create_ambiguous_at": iso(world.clock())}, now=world.clock())
    world.clock.advance(claimed_ago - 1)


@pytest.mark.parametrize(
    ("claimed_ago", "answered", "task_id"),
    [
        (0, False, "task-1"),  # this submit's own create loses its answer
        (5, True, "task-lost"),  # another invocation's create lost its answer; its claim is live
        (120, False, "task-lost"),  # the invocation that sent the create died; its claim went stale
    ],
)
def test_submit_adopting_a_lost_creates_task_reads_the_job_once(
    world: World, monkeypatch: pytest.MonkeyPatch, claimed_ago: float, answered: bool, task_id: str
) -> None:
    # Given a create whose task exists and whose answer was lost (or is about to be)
    if claimed_ago:
        lost_create(world, claimed_ago=claimed_ago, answered=answered)
    else:
        world.provider.lose_next_answer = True
        with pytest.raises(AmbiguousCreateError):  # the task is too young to tell: retried
            submit(world)
        wait_out_index_lag(world)
    reads = count_reads(world, monkeypatch)

    # When submit reconciles and adopts the task
    turn = submit(world)

    # Then the turn comes from the job the binding wrote: read once, when submit began
    assert reads == ["job-1"]
    assert turn.task_id == task_id and world.job("job-1")["task_id"] == task_id
    assert world.provider.creates == (1 if task_id == "task-1" else 0)


def test_a_job_canceled_while_its_task_is_created_gets_the_task_canceled(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a user who cancels the job while the provider creates its task
    create = world.provider.create_task

    def create_while_canceled(request: Any, urls: Any = None) -> Any:
        world.repo.transition("job-1", JobStatus.CANCELED, now=world.clock())
        return create(request, urls)

    monkeypatch.setattr(world.provider, "create_task", create_while_canceled)
    reads = count_reads(world, monkeypatch)

    # When submit binds the task it created, the binding is refused
    with pytest.raises(JobAlreadyFinishedError):
        submit(world)

    # Then the task nobody will poll is canceled, and the job read only when submit began
    assert world.provider.canceled == ["task-1"]
    assert world.job("job-1")["status"] == "CANCELED" and "task_id" not in world.job("job-1")
    assert reads == ["job-1"]


def test_a_lost_create_waits_while_another_jobs_create_may_have_made_the_task(world: World) -> None:
    # Given another job whose create was sent a moment ago and is still unanswered
    now = world.clock()
    record(world, "job-0", "a dog")
    world.repo.update_fields("job-0", {"create_sent_at": iso(now)}, now=now)
    world.provider.lose_next_answer = True

    # When our create's answer is lost, the task cannot be told apart yet: submit waits, creates nothing
    with pytest.raises(AmbiguousCreateError):
        submit(world)
    assert world.provider.creates == 1 and "task_id" not in world.job("job-1")

    # Then once the task shows its prompt (SUCCEEDED), the retry binds it on proof
    world.provider.finish("task-1", "SUCCEEDED", video_url=URL)
    world.clock.advance(120)  # our claim has gone stale
    assert submit(world).task_id == "task-1" and world.provider.creates == 1


def test_a_lost_create_is_told_apart_from_another_applications_twin_by_its_api_key(world: World) -> None:
    """The soak's finding: another application on the account, with its own API key, made a task with
    our prompt in the second our create's answer was lost. Two unowned tasks without proof (neither
    shows its prompt before SUCCEEDED; a FAILED one never does): the job waited, and once both had
    FAILED contested both and created a second billed task. The list says which key made each task:
    a task another job of ours owns shows our key, so the twin (another key) is no candidate."""
    now = world.clock()
    record(world, "job-0", "a dog")
    world.provider.add_task("task-ours-running", "RUNNING", prompt="a dog")
    world.repos.tasks.record_task("job-0", task_id="task-ours-running", request_id="r-0", now=now)
    world.provider.add_task("task-twin", "PENDING", prompt="a cat", key_id="key-another-app")
    world.provider.lose_next_answer = True

    # When submit reconciles: the twin (another key) is no candidate, ours is the one task left
    turn = submit_after_index_lag(world)

    # Then ours is bound at once; no second (billed) task, and the twin is left alone
    assert turn.task_id == "task-1"
    assert world.provider.creates == 1
    assert world.repos.tasks.owner_of_task("task-twin") is None  # not contested either: simply not ours


def test_a_live_claim_keeps_a_second_submit_from_creating(world: World) -> None:
    record(world)
    world.repo.claim_create("job-1", now=world.clock(), stale_before=world.clock())
    with pytest.raises(CreateInProgressError):
        submit(world)
    assert world.provider.creates == 0


def test_a_job_canceled_while_polling_stays_canceled_when_its_video_arrives(world: World) -> None:
    # Given a running job the user cancels (the API's path: end_job with CANCELED)
    turn = submit(world)
    end_job(
        "job-1",
        Ended(status=JobStatus.CANCELED, code="Canceled", message="canceled by the user"),
        world.announce,
    )
    world.provider.finish(turn.task_id, "SUCCEEDED", video_url=URL)

    # When the workflow's finalize runs anyway
    done = poll_until_decided(world, turn)
    assert isinstance(done.outcome, Succeeded)
    result = finalize_job("job-1", done.outcome, world.finalize)

    # Then nothing is stored and the one message says CANCELED
    assert result.status == JobStatus.CANCELED
    assert world.store.objects == {}
    assert [m["status"] for m in world.notifier.messages] == ["CANCELED"]


CANCELED = Ended(status=JobStatus.CANCELED, code="Canceled", message="canceled by the user")


def test_a_conditional_end_of_a_job_that_changed_since_it_was_read_changes_nothing(world: World) -> None:
    # Given a job read before its task was bound
    seen = record(world)
    world.repos.tasks.record_task("job-1", task_id="task-9", request_id=None, now=world.clock())

    # When it is ended on condition that it still has no task
    ending = end_job("job-1", CANCELED, world.announce, seen=seen, expect={"task_id": None})

    # Then nothing is written or announced, and the caller sees the job as it is now
    assert not ending.announced.notified
    assert (ending.job.status, ending.job.task_id) == (JobStatus.SUBMITTED, "task-9")
    assert world.job("job-1")["status"] == "SUBMITTED" and world.notifier.messages == []


def test_a_conditional_end_that_holds_answers_with_the_announced_job(world: World) -> None:
    seen = record(world)

    ending = end_job("job-1", CANCELED, world.announce, seen=seen, expect={"task_id": None})

    assert ending.announced.notified and ending.announced.status == JobStatus.CANCELED
    assert ending.job == world.repo.get("job-1")  # the job as its announcement left it
    assert ending.job.notified and ending.job.event_sent_at is not None
    assert [m["status"] for m in world.notifier.messages] == ["CANCELED"]


def test_ending_a_job_twice_announces_it_once(world: World) -> None:
    failed = Ended(status=JobStatus.FAILED, code="InvalidRequest", message="size: bad")
    end_job("job-x", failed, world.announce)
    end_job("job-x", failed, world.announce)
    assert len(world.notifier.messages) == 1 and len(world.notifier.events) == 1
    assert world.job("job-x")["status"] == "FAILED"


def test_a_throttled_query_waits_longer_and_keeps_the_job_running(world: World) -> None:
    from t2v.errors import ProviderThrottledError

    turn = submit(world)
    world.provider.fail = ProviderThrottledError("slow down", http_status=429, provider_code="Throttling")
    world.clock.advance(turn.wait_seconds)

    throttled = poll(turn, world.pipeline)

    assert (throttled.decision, throttled.errors) == (PollDecision.WAIT, 1)
    assert throttled.wait_seconds >= 2 * world.pipeline.settings.poll_interval_seconds - 1
    assert world.job("job-1")["status"] == "SUBMITTED"


def test_a_task_adopted_without_proof_that_shows_another_prompt_is_released_for_the_jobs_own(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another client's task (our API key) made while our create was in flight, and our create
    # lost before the provider made anything: the lone unowned task is adopted without proof
    world.provider.add_task("task-theirs", "PENDING", prompt="their prompt")
    create = world.provider.create_task

    def lost_before_made(request: RequestBase, urls: Any = None) -> CreatedTask:
        monkeypatch.setattr(world.provider, "create_task", create)
        raise AmbiguousCreateError("the create timed out before the provider made anything")

    monkeypatch.setattr(world.provider, "create_task", lost_before_made)
    turn = submit_after_index_lag(world)
    assert turn.task_id == "task-theirs" and world.job("job-1")["adopted_unproven"] is True

    # When its task finishes and shows another prompt
    world.provider.finish("task-theirs", "SUCCEEDED", video_url=URL)
    world.clock.advance(turn.wait_seconds)
    turn = poll(turn, world.pipeline)

    # Then the task is released (marked foreign, never adopted again) and the job made its own
    assert turn.task_id == "task-1" and world.provider.creates == 1
    assert world.job("job-1")["task_id"] == "task-1"
    assert world.job("job-1")["released_tasks"] == ["task-theirs"]
    assert world.repos.tasks.owner_of_task("task-theirs") == FOREIGN
    assert world.repos.table.active == 1  # counted once: for the job's own task


def test_push_wakes_cost_no_poll_and_have_their_own_bound(world: World) -> None:
    # Given push on and a job whose task runs a long time
    env = {"JOBS_TABLE": "jobs", "DASHSCOPE_SECRET_ID": "s", "PUSH_COMPLETION": "true", "MAX_POLLS": "3"}
    deps = dataclasses.replace(world.pipeline, settings=ProviderSettings.from_env(env))
    turn = submit(world)
    assert turn.wait_seconds > 5
    # When pushes with distinct ids wake its wait again and again, each soon after it parked
    for _ in range(MAX_PUSH_WAKES):
        world.clock.advance(1)
        turn = poll(turn, deps)
        assert turn.decision == PollDecision.WAIT and turn.wait_seconds >= 3  # a look soon after a push
    # Then those turns spent no poll (a flood cannot end a paid job TIMED_OUT), only wakes
    assert (turn.polls, turn.wakes) == (0, MAX_PUSH_WAKES)
    # And past the wakes' bound an early turn counts as a poll again: nothing is unbounded
    world.clock.advance(1)
    assert poll(turn, deps).polls == 1


def test_an_owned_job_is_listed_under_its_owner_and_status_from_its_end(world: World) -> None:
    # Given two owned jobs and one without an owner (a prompt file's, no PromptJobOwner)
    now = world.clock()
    for job_id, owner in (("job-s", "arn:alice"), ("job-f", "arn:alice"), ("job-n", None)):
        world.repo.create_if_absent(
            job_id, request={"prompt": "a cat", "size": "640*360"}, source="api", origin={}, now=now,
            deadline_at=now + timedelta(hours=1), owner=owner,
        )  # fmt: skip
    # When one succeeds through the workflow and the others fail
    turn = submit(world, "job-s")
    assert "owner_status" not in world.job("job-s")  # not ended: not in the index
    world.provider.finish(turn.task_id, "SUCCEEDED", video_url=URL)
    done = poll_until_decided(world, turn)
    assert isinstance(done.outcome, Succeeded)
    finalize_job("job-s", done.outcome, world.finalize)
    failed = Ended(status=JobStatus.FAILED, code="X", message="x")
    end_job("job-f", failed, world.finalize.announce)
    end_job("job-n", failed, world.finalize.announce)
    # Then each owned job carries its owner and end, and the unowned one nothing
    assert world.job("job-s")["owner_status"] == "arn:alice#SUCCEEDED"
    assert world.job("job-f")["owner_status"] == "arn:alice#FAILED"
    assert "owner_status" not in world.job("job-n")


def test_a_rival_create_the_index_does_not_show_yet_keeps_its_task(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`unbound_creates` reads a global secondary index, which lags its table: a job whose create
    was sent a moment ago may not show there. Its task, made while our lost create was in flight,
    must not be adopted as ours (its job would then cancel it as an orphan, and both would fail)."""
    # Given job-y's create in flight, its task made, but job-y not yet in the index
    record(world, "job-y", "a dog")
    world.repo.update_fields("job-y", {"create_sent_at": iso(world.clock())}, now=world.clock())
    world.provider.add_task("task-y", "PENDING", prompt="a dog")
    monkeypatch.setattr(world.repo, "unbound_creates", lambda since: [])
    create = world.provider.create_task

    def lost_before_made(request: RequestBase, urls: Any = None) -> CreatedTask:
        monkeypatch.setattr(world.provider, "create_task", create)
        raise AmbiguousCreateError("the create timed out before the provider made anything")

    monkeypatch.setattr(world.provider, "create_task", lost_before_made)

    # When job-1's create is lost: the lone unowned task is too young to tell
    with pytest.raises(AmbiguousCreateError):
        submit(world)
    assert world.repos.tasks.owner_of_task("task-y") is None

    # Then job-y binds its own task meanwhile, and job-1's retry creates its own
    world.repos.tasks.record_task("job-y", task_id="task-y", request_id="r-y", now=world.clock())
    world.clock.advance(world.pipeline.settings.create_claim_stale_seconds + 1)  # the lost claim lapses
    turn = submit(world)
    assert turn.task_id == "task-1" and world.job("job-y")["task_id"] == "task-y"


# -- image-to-video: images checked before any paid call, presigned when the task is created ----

IT2V = "pixverse/pixverse-v5.6-it2v"
KEY = "s3://t2v-bucket/inputs/123456789012/user/alice/cat.png"


def submit_images(world: World, images: FakeImages, media: list[dict[str, str]], **request: Any) -> Any:
    deps = replace(world.pipeline, images=images)
    body = {"model": IT2V, "media": media, **request}
    return submit_job(SubmitInput(job_id="job-img", request=body, source="test"), deps)


def test_an_it2v_task_gets_the_images_presigned_url(world: World) -> None:
    images = FakeImages({KEY: png(64, 36)})

    turn = submit_images(world, images, [{"type": "image_url", "url": KEY}], prompt="waves")

    assert isinstance(turn, PollTurn) and turn.tier.key == "it2v/720P/5s/silent"
    (body,) = world.provider.bodies
    assert body["input"]["media"] == [
        {
            "type": "image_url",
            "url": "https://signed.example/t2v-bucket/inputs/123456789012/user/alice/cat.png?expires=3600",
        }
    ]
    assert world.job("job-img")["request"]["media"] == [
        {"type": "image_url", "url": KEY}
    ]  # the job keeps the key


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"I am text, named .png", "is not a JPEG, PNG, WEBP image"),
        (png(2, 2) + bytes(21 * 1024 * 1024), "over the limit"),
        (None, "NoSuchKey"),
    ],
)
def test_a_bad_image_fails_before_any_paid_call_naming_it(
    world: World, data: bytes | None, rule: str
) -> None:
    images = FakeImages({KEY: data} if data is not None else {})

    with pytest.raises(InvalidRequestError) as raised:
        submit_images(world, images, [{"type": "image_url", "url": KEY}])

    assert world.provider.creates == 0
    (error,) = raised.value.errors
    assert error.field == "media.0.url" and KEY in error.message and rule in error.message


def test_kf2v_checks_both_frames(world: World) -> None:
    last = KEY.replace("cat", "dog")
    images = FakeImages({KEY: png(8, 8), last: b"not an image"})
    media = [{"type": "first_frame", "url": KEY}, {"type": "last_frame", "url": last}]

    with pytest.raises(InvalidRequestError) as raised:
        submit_images(world, images, media, prompt="cat to dog", model="pixverse/pixverse-v5.6-kf2v")

    assert [e.field for e in raised.value.errors] == ["media.1.url"]
    assert world.provider.creates == 0


def test_the_providers_data_inspection_refusal_fails_the_job_with_its_reason_never_retried(
    world: World,
) -> None:
    from t2v.errors import TerminalProviderError, classify_http_error

    world.provider.fail = classify_http_error(
        400, "InvalidParameter.DataInspection", "Download the media resource timed out.", "req-1"
    )
    images = FakeImages({KEY: png(8, 8)})

    with pytest.raises(TerminalProviderError) as raised:
        submit_images(world, images, [{"type": "image_url", "url": KEY}])

    assert raised.value.retryable is False
    job = world.job("job-img")
    assert (job["error_code"], job["error_message"]) == (
        "InvalidParameter.DataInspection",
        "Download the media resource timed out.",
    )
