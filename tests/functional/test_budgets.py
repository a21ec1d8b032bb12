"""Per-caller daily budgets and refunds through the use cases, on in-memory fakes: what a caller can
submit, and which endings give their seconds back (once, under duplicates and crashes)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest
from t2v.billing import REFUNDED, BillingOutcome, billing_outcome, day_key
from t2v.config import AnnounceSettings, ProviderSettings
from t2v.contract import Ended, PollDecision, PollTurn, SubmitInput
from t2v.errors import BudgetExceededError, TerminalProviderError
from t2v.jobs import JobRecord, JobStatus, TaskStatus
from t2v.sweeper import SweepDeps, sweep
from t2v.usecases.announce import AnnounceDeps, end_job
from t2v.usecases.poll import poll_job
from t2v.usecases.ports import ProviderDeps
from t2v.usecases.submit import submit_job
from t2v_bench.ledger import MemoryPollStats

from tests.fakes import FakeClock, FakeNotifier, FakeProvider, FakeRepos

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
ENV = {"JOBS_TABLE": "jobs", "DASHSCOPE_SECRET_ID": "s", "TOPIC_ARN": "arn:t"}


@dataclass
class World:
    clock: FakeClock
    repos: FakeRepos
    provider: FakeProvider
    notifier: FakeNotifier
    pipeline: ProviderDeps
    announce: AnnounceDeps

    @property
    def day(self) -> str:
        return f"{self.clock():%Y-%m-%d}"

    def used(self, owner: str | None = None) -> int:
        return self.repos.table.budget.get(day_key(self.day, owner), 0)

    def refunded(self, owner: str | None = None) -> int:
        return self.repos.table.refunded.get(day_key(self.day, owner), 0)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.repos.table.items[job_id]


def make_world(*, account: int = 100, caller: int = 10, refunds: bool = True) -> World:
    clock, repos, notifier = FakeClock(), FakeRepos(), FakeNotifier()
    provider = FakeProvider(clock=clock)
    env = {**ENV, "DAILY_BUDGET_SECONDS": str(account), "CALLER_DAILY_BUDGET_SECONDS": str(caller)}
    pipeline = ProviderDeps(
        repo=repos.jobs,
        tasks=repos.tasks,
        budget=repos.budget,
        client=lambda: provider,
        settings=ProviderSettings.from_env(env),
        clock=clock,
        rng=random.Random(7),
        stats=MemoryPollStats(),
        sleep=clock.advance,
    )
    announce = AnnounceDeps(
        repo=repos.jobs,
        announcements=repos.announcements,
        notifier=notifier,
        clock=clock,
        sleep=clock.advance,
        refunds=repos.budget if refunds else None,
    )
    return World(clock, repos, provider, notifier, pipeline, announce)


@pytest.fixture
def world() -> World:
    return make_world()


def submit(world: World, job_id: str, owner: str | None = ALICE) -> PollTurn:
    now = world.clock()
    request = {"prompt": f"a cat {job_id}", "size": "640*360", "duration": 5}
    world.repos.jobs.create_if_absent(
        job_id, request=request, source="api", origin={}, now=now, deadline_at=now, owner=owner
    )
    turn = submit_job(SubmitInput(job_id=job_id, request=request, source="api"), world.pipeline)
    assert isinstance(turn, PollTurn), turn
    return turn


def ended_by_the_provider(world: World, turn: PollTurn, status: str) -> Ended:
    """The provider ends the task; the poll loop reports it (as the state machine's outcome)."""
    world.provider.finish(turn.task_id, status, code="InternalError" if status == "FAILED" else None)
    done = poll_job(turn, world.pipeline)
    assert isinstance(done, PollTurn) and done.decision != PollDecision.WAIT
    assert isinstance(done.outcome, Ended)
    return done.outcome


def test_one_caller_spending_its_day_leaves_another_callers_day_whole(world: World) -> None:
    # Given Alice spent her 10 s (two 5 s jobs)
    submit(world, "a-1")
    submit(world, "a-2")

    # When she submits a third, and Bob his first
    with pytest.raises(BudgetExceededError):
        submit(world, "a-3")
    submit(world, "b-1", owner=BOB)

    # Then Alice's third created no task, Bob's did, and each counter holds its own
    assert world.provider.creates == 3
    assert "budget_day" not in world.job("a-3")
    assert (world.used(ALICE), world.used(BOB), world.used()) == (10, 5, 15)


def test_the_account_ceiling_holds_over_every_caller() -> None:
    world = make_world(account=10, caller=10)
    submit(world, "a-1")
    submit(world, "b-1", owner=BOB)
    with pytest.raises(BudgetExceededError, match="account"):
        submit(world, "c-1", owner="arn:aws:iam::123456789012:user/carol")
    assert world.used() == 10 and world.provider.creates == 2


@pytest.mark.parametrize("status", ["FAILED", "CANCELED"])
def test_a_task_failed_or_canceled_at_the_provider_gives_its_seconds_back(world: World, status: str) -> None:
    turn = submit(world, "a-1")
    outcome = ended_by_the_provider(world, turn, status)

    end_job("a-1", outcome, world.announce)

    # Both counters are back where they were; the job shows it, and its day's refunds count it
    assert (world.used(ALICE), world.used()) == (0, 0)
    assert (world.refunded(ALICE), world.refunded()) == (5, 5)
    job = world.job("a-1")
    assert job["refunded_at"] and job["billing_outcome"] in {"provider_failed", "canceled_pending"}


def test_a_create_refused_by_the_provider_gives_its_seconds_back(world: World) -> None:
    # Given the provider refuses the create (no task exists)
    world.provider.fail = TerminalProviderError(
        "bad prompt", http_status=400, provider_code="DataInspectionFailed"
    )
    with pytest.raises(TerminalProviderError):
        submit(world, "a-1")
    assert world.used(ALICE) == 5  # charged before the create

    # When the state machine's Catch ends the job (finalize's RecordFailure)
    end_job(
        "a-1", Ended(status=JobStatus.FAILED, code="ProviderTerminal", message="bad prompt"), world.announce
    )

    # Then the charge came back
    assert (world.used(ALICE), world.refunded(ALICE)) == (0, 5)
    assert world.job("a-1")["billing_outcome"] == "no_task"


def test_a_succeeded_job_and_a_failure_of_ours_after_the_task_keep_their_charge(world: World) -> None:
    turn = submit(world, "a-1")
    submit(world, "a-2")
    world.provider.finish(turn.task_id, "SUCCEEDED", video_url="https://media.pixverseai.cn/v.mp4")
    record = world.repos.jobs.get("a-1")
    assert record is not None
    world.repos.jobs.transition("a-1", JobStatus.SUCCEEDED, now=world.clock())
    end_job("a-1", Ended(status=JobStatus.FAILED, code="x", message="late duplicate"), world.announce)
    # A download that failed after the provider finished (billed): FAILED, kept
    end_job("a-2", Ended(status=JobStatus.FAILED, code="DownloadRejected", message="too big"), world.announce)

    assert world.used(ALICE) == 10 and world.refunded(ALICE) == 0
    assert world.job("a-2")["billing_outcome"] == "failed_after_task"


def test_a_duplicate_end_refunds_once(world: World) -> None:
    turn = submit(world, "a-1")
    outcome = ended_by_the_provider(world, turn, "FAILED")

    end_job("a-1", outcome, world.announce)
    end_job("a-1", outcome, world.announce)  # the outcome delivered again (a Lambda retry)
    end_job("a-1", outcome, world.announce, seen=world.repos.jobs.get("a-1"))

    assert (world.used(ALICE), world.refunded(ALICE)) == (0, 5)
    assert len(world.notifier.messages) == 1


def test_a_crash_between_the_end_and_the_refund_is_healed_once_by_the_retry_or_the_sweeper(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an end whose invocation dies right after the job's terminal write (before its refund)
    turn = submit(world, "a-1")
    outcome = ended_by_the_provider(world, turn, "FAILED")
    refund = world.repos.budget.refund

    def crash(job: JobRecord, **_: Any) -> bool:
        raise RuntimeError("the Lambda died")

    monkeypatch.setattr(world.repos.budget, "refund", crash)
    with pytest.raises(RuntimeError):
        end_job("a-1", outcome, world.announce)
    assert world.job("a-1")["status"] == "FAILED" and world.used(ALICE) == 5
    assert not world.notifier.messages  # a refund comes before the announcement
    monkeypatch.setattr(world.repos.budget, "refund", refund)

    # When the sweeper finds the ended, unannounced job, and then the Lambda retry also runs
    world.clock.advance(3600)
    deps = SweepDeps(
        repo=world.repos.jobs,
        executions=_NoExecutions(),
        provider=lambda: world.provider,
        outcomes=world.announce,
        settings=_sweeper_settings(),
        clock=world.clock,
    )
    sweep(deps)
    end_job("a-1", outcome, world.announce)

    # Then the seconds came back once, and the job was announced once
    assert (world.used(ALICE), world.refunded(ALICE)) == (0, 5)
    assert [m["status"] for m in world.notifier.messages] == ["FAILED"]


def test_refunds_off_keeps_every_charge() -> None:
    world = make_world(refunds=False)
    turn = submit(world, "a-1")
    end_job("a-1", ended_by_the_provider(world, turn, "FAILED"), world.announce)
    assert (world.used(ALICE), world.refunded(ALICE)) == (5, 0)
    assert "refunded_at" not in world.job("a-1")


def test_refunds_enabled_is_read_from_the_environment() -> None:
    env = {"JOBS_TABLE": "t", "TOPIC_ARN": "a"}
    assert AnnounceSettings.from_env(env).refunds_enabled is True
    assert AnnounceSettings.from_env({**env, "REFUNDS_ENABLED": "false"}).refunds_enabled is False


def test_the_refund_table_covers_every_outcome_and_its_defaults() -> None:
    assert set(REFUNDED) == set(BillingOutcome)
    assert {o for o, back in REFUNDED.items() if back} == {
        BillingOutcome.NO_TASK,
        BillingOutcome.CANCELED_PENDING,
        BillingOutcome.PROVIDER_FAILED,
    }
    # A create sent and never answered may have made a (billed) task: kept
    lost = JobRecord.model_validate(
        {"pk": "j", "status": "FAILED", "create_sent_at": "2026-01-01T00:00:00.000Z"}
    )
    assert billing_outcome(lost, JobStatus.FAILED) == BillingOutcome.CREATE_UNKNOWN
    with_task = lost.model_copy(update={"task_id": "t"})
    assert billing_outcome(with_task, JobStatus.FAILED, TaskStatus.FAILED) == BillingOutcome.PROVIDER_FAILED
    assert billing_outcome(with_task, JobStatus.TIMED_OUT) == BillingOutcome.TIMED_OUT


class _NoExecutions:
    def start(self, job_id: str, payload: dict[str, Any]) -> bool:
        return True

    def stop(self, job_id: str, *, cause: str) -> bool:
        return True

    def status(self, job_id: str) -> str | None:
        return None


def _sweeper_settings() -> Any:
    from t2v.config import SweeperSettings

    return SweeperSettings.from_env({**ENV, "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:1:stateMachine:m"})
