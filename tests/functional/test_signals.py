"""The operator's signals (t2v.signals) through the use cases, on in-memory fakes: what each alarm's
metric counts, and that normal outcomes (a provider failure, a cancel, a job on time) count nothing
abnormal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from t2v.capacity import CAPACITY_CODES
from t2v.contract import Ended
from t2v.errors import BudgetExceededError, ProviderAuthError, ProviderThrottledError
from t2v.jobs import JobStatus
from t2v.request import VideoRequest
from t2v.signals import MeteredBudget, MeteredNotifier, MeteredProvider, Signal, budget_percent
from t2v.sweeper import SweepDeps, SweepReport, is_overdue, sweep
from t2v.usecases.announce import end_job

from tests.fakes import FakeExecutions, FakeProvider, FakeSignals, FakeTask
from tests.functional.test_budgets import World, _sweeper_settings, ended_by_the_provider, make_world, submit


def metered(world: World, signals: FakeSignals) -> World:
    """The world as wiring builds it: provider, budget and notifier wrapped."""
    world.pipeline.client = lambda: MeteredProvider(world.provider, signals)
    world.pipeline.budget = MeteredBudget(world.repos.budget, signals)
    world.announce.notifier = MeteredNotifier(world.notifier, signals)
    return world


@pytest.fixture
def signals() -> FakeSignals:
    return FakeSignals()


def test_a_refused_key_counts_an_auth_failure_and_raises_on(signals: FakeSignals) -> None:
    world = metered(make_world(), signals)
    world.provider.fail = ProviderAuthError(
        "Invalid API-key provided.", http_status=401, provider_code="InvalidApiKey"
    )

    with pytest.raises(ProviderAuthError):
        submit(world, "a-1")

    assert signals.total(Signal.PROVIDER_AUTH_FAILURES) == 1
    assert signals.total(Signal.CREATE_REFUSALS) == 0


def test_a_create_refused_for_capacity_counts_a_refusal_a_rate_limit_does_not(signals: FakeSignals) -> None:
    provider = FakeProvider()
    client = MeteredProvider(provider, signals)
    request = VideoRequest(prompt="a cat")
    for code in sorted(CAPACITY_CODES):
        provider.fail = ProviderThrottledError("full", http_status=429, provider_code=code)
        with pytest.raises(ProviderThrottledError):
            client.create_task(request)
    provider.fail = ProviderThrottledError(
        "quota", http_status=429, provider_code="Throttling.AllocationQuota"
    )
    with pytest.raises(ProviderThrottledError):
        client.create_task(request)
    with pytest.raises(ProviderThrottledError):
        client.get_task("t-1")  # a throttled query is no refused create

    assert signals.total(Signal.CREATE_REFUSALS) == len(CAPACITY_CODES)
    assert signals.total(Signal.PROVIDER_AUTH_FAILURES) == 0


def test_a_refused_key_on_a_query_a_cancel_or_a_listing_counts_too(signals: FakeSignals) -> None:
    provider = FakeProvider()
    client = MeteredProvider(provider, signals)
    provider.fail = ProviderAuthError("denied", http_status=403, provider_code="AccessDenied")
    with pytest.raises(ProviderAuthError):
        client.get_task("t-1")
    with pytest.raises(ProviderAuthError):
        client.cancel_task("t-1")
    provider.tasks["t-2"] = FakeTask("t-2", "p", "m", provider._now())
    listing = client.iter_tasks(start_time=provider._now() - timedelta(1), end_time=provider._now())

    assert [t.task_id for t in listing] == ["t-2"]  # a listing passes through
    assert signals.total(Signal.PROVIDER_AUTH_FAILURES) == 2


def test_every_charge_tells_how_full_the_accounts_day_is_a_refusal_too(signals: FakeSignals) -> None:
    # Given an account day of 10 s and a caller's of 10 s
    world = metered(make_world(account=10, caller=10), signals)

    submit(world, "a-1")
    submit(world, "a-2")
    with pytest.raises(BudgetExceededError):
        submit(world, "a-3")

    assert [v for name, v, _ in signals.seen if name == "BudgetUsedPercent"] == [50.0, 100.0, 100.0]


def test_no_account_budget_no_percent(signals: FakeSignals) -> None:
    world = metered(make_world(account=0, caller=0), signals)
    submit(world, "a-1")
    assert signals.total(Signal.BUDGET_USED_PERCENT) == 0 and not signals.seen


def test_budget_percent_is_bounded() -> None:
    assert (budget_percent(0, 100), budget_percent(91, 100), budget_percent(120, 100)) == (0.0, 91.0, 100.0)


def test_each_announced_outcome_counts_once_by_its_status_a_provider_failure_included(
    signals: FakeSignals,
) -> None:
    world = metered(make_world(), signals)
    turn = submit(world, "a-1")
    outcome = ended_by_the_provider(world, turn, "FAILED")

    end_job("a-1", outcome, world.announce)
    end_job("a-1", outcome, world.announce)  # a retry of the same end announces nothing new

    assert [(n, s) for n, _, s in signals.seen if n == "JobsEnded"] == [("JobsEnded", "FAILED")]
    assert signals.total(Signal.UNRECORDED_ENDINGS) == 0


class Executions(FakeExecutions):
    def __init__(self, status: str | None) -> None:
        super().__init__()
        self._status = status

    def status(self, job_id: str) -> str | None:
        return self._status


def sweeper(world: World, signals: FakeSignals, execution: str | None) -> SweepDeps:
    return SweepDeps(
        repo=world.repos.jobs,
        executions=Executions(execution),
        provider=lambda: world.provider,
        outcomes=world.announce,
        settings=_sweeper_settings(),
        clock=world.clock,
        signals=signals,
    )


def test_a_sweep_with_nothing_to_do_reports_zeros(signals: FakeSignals) -> None:
    world = make_world()
    sweep(sweeper(world, signals, "RUNNING"))
    assert sorted(signals.seen) == [
        ("OverdueJobs", 0, None),
        ("SweeperRepairs", 0, None),
        ("UnrecordedEndings", 0, None),
    ]


def test_an_execution_that_ended_without_recording_counts_an_unrecorded_ending_and_a_repair(
    signals: FakeSignals,
) -> None:
    # Given a running job whose execution FAILED outside every Catch (or timed out)
    world = make_world()
    submit(world, "a-1")
    world.clock.advance(3600)

    sweep(sweeper(world, signals, "FAILED"))

    assert world.job("a-1")["status"] == "FAILED"
    assert signals.total(Signal.UNRECORDED_ENDINGS) == 1
    assert signals.total(Signal.SWEEPER_REPAIRS) == 1


def test_a_job_past_its_deadline_whose_execution_still_runs_is_overdue_not_repaired(
    signals: FakeSignals,
) -> None:
    world = make_world()
    submit(world, "a-1")
    world.repos.table.items["a-1"]["deadline_at"] = world.job("a-1")["created_at"]
    world.clock.advance(3600)

    sweep(sweeper(world, signals, "RUNNING"))

    assert signals.total(Signal.OVERDUE_JOBS) == 1
    assert signals.total(Signal.SWEEPER_REPAIRS) == 0


def test_overdue_counts_from_the_deadline_plus_grace_and_a_queued_job_from_its_queue_limit() -> None:
    world = make_world()
    submit(world, "a-1")
    settings = _sweeper_settings()
    job = world.repos.jobs.get("a-1")
    assert job is not None and job.deadline_at is not None
    grace = timedelta(seconds=settings.sweep_grace_seconds)

    assert not is_overdue(job, job.deadline_at + grace, settings)
    assert is_overdue(job, job.deadline_at + grace + timedelta(seconds=1), settings)

    waiting = job.model_copy(update={"status": JobStatus.WAITING, "queued_at": job.created_at})
    assert not is_overdue(waiting, job.deadline_at + grace + timedelta(seconds=1), settings)
    assert job.created_at is not None
    queue_limit = job.created_at + timedelta(seconds=settings.max_queue_seconds) + grace
    assert is_overdue(waiting, queue_limit + timedelta(seconds=1), settings)


def test_the_report_counts_every_kind_of_repair() -> None:
    report = SweepReport(["s"], ["e"], ["a"], reclaimed=["r"], overdue=["o"])
    assert report.repairs == 4


def test_a_cancel_is_no_abnormal_signal(signals: FakeSignals) -> None:
    # Given a job canceled by its owner
    world = metered(make_world(), signals)
    submit(world, "a-1")

    end_job("a-1", Ended(status=JobStatus.CANCELED, code="Canceled", message="by its owner"), world.announce)

    assert {n for n, _, _ in signals.seen} <= {"BudgetUsedPercent", "JobsEnded"}
