"""The capacity governor's wiring: the ASL's capacity wait, the park step's hand-over for it, the time
limits the template's defaults must keep, and what the API, the CLI and the console show a WAITING job."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from t2v.api.views import ViewContext, capacity_view
from t2v.capacity import STATE_MACHINE_TIMEOUT_SECONDS, QueuePlace, seconds_to_start
from t2v.config import ConfigError, JobsSettings, ProviderSettings, SweeperSettings
from t2v.contract import CapacityWait, Ended, OutcomeInput, ParkPurpose, ParkRequest
from t2v.jobs import JobRecord, JobStatus, Parked
from t2v.push import PushDeps, park_wait
from t2v.schedule import GenerationTier, TierHistory
from t2v.times import iso
from t2v_client.jobs import ProgressFacts, format_progress, progress_facts

from tests.conftest import ROOT
from tests.unit.test_asl_push import template
from tests.unit.test_contract import STATES, payload_of, sample_document

ASL = json.loads((ROOT / "statemachine" / "pipeline.asl.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
PROVIDER_ENV = {"JOBS_TABLE": "t", "DASHSCOPE_SECRET_ID": "s"}


# -- the state machine ----------------------------------------------------------------------------


def queued_document(decision: str = "QUEUED") -> dict[str, Any]:
    wait = CapacityWait(job_id="job-1", decision=decision, wait_seconds=600, turns=1)  # type: ignore[arg-type]
    if decision == "TIMED_OUT":
        gave_up = Ended(status=JobStatus.TIMED_OUT, code="CapacityWaitTimeout", message="no capacity")
        wait = wait.model_copy(update={"outcome": gave_up})
    document = sample_document(STATES_SAMPLE)
    document["status"] = {"Payload": wait.model_dump(mode="json")}
    return document


from tests.unit.test_contract import WAITING as STATES_SAMPLE  # noqa: E402  (the status sample's turn)


def test_submit_routes_a_capacity_wait_to_the_park_and_a_created_task_to_the_poll_loop() -> None:
    choice = STATES["AdmittedOrWaiting"]
    routes = {c["StringEquals"]: c["Next"] for c in choice["Choices"]}
    assert {c["Variable"] for c in choice["Choices"]} == {"$.status.Payload.decision"}
    assert routes == {"QUEUED": "ParkForCapacity", "TIMED_OUT": "CapacityWaitTimedOut"}
    assert set(routes) == set(CapacityWait.model_fields["decision"].annotation.__args__)  # type: ignore[union-attr]
    assert choice["Default"] == "${AfterSubmit}"  # a PollTurn's decision is WAIT


def test_the_capacity_park_wakes_into_submit_and_times_out_into_submit() -> None:
    park = STATES["ParkForCapacity"]
    assert park["Resource"] == "arn:${Partition}:states:::lambda:invoke.waitForTaskToken"
    document = queued_document()
    request = ParkRequest.model_validate(payload_of(park, document))
    assert request.purpose == ParkPurpose.CAPACITY and request.job_id == document["job_id"]
    assert park["TimeoutSecondsPath"] == "$.status.Payload.wait_seconds"
    assert park["Next"] == "Submit" and park["ResultPath"] is None
    catches = {tuple(c["ErrorEquals"]): c["Next"] for c in park["Catch"]}
    assert catches == {("States.Timeout",): "Submit", ("States.ALL",): "CapacityBackoff"}
    assert STATES["CapacityBackoff"]["SecondsPath"] == "$.status.Payload.wait_seconds"
    assert STATES["CapacityBackoff"]["Next"] == "Submit"
    # Never Retry on States.ALL: only the Lambda service's transient errors.
    assert all("States.ALL" not in r["ErrorEquals"] for r in park["Retry"])


def test_a_wait_past_the_queue_limit_is_recorded_as_an_outcome() -> None:
    assert STATES["CapacityWaitTimedOut"]["Next"] == "RecordOutcome"
    sent = payload_of(STATES["RecordOutcome"], queued_document("TIMED_OUT"))
    outcome = OutcomeInput.model_validate(sent)
    assert outcome.outcome.status == JobStatus.TIMED_OUT and outcome.polls == 0  # type: ignore[union-attr]


def test_the_state_machine_timeout_is_the_one_the_limits_are_checked_against() -> None:
    assert ASL["TimeoutSeconds"] == STATE_MACHINE_TIMEOUT_SECONDS


def test_the_templates_defaults_agree_with_every_bound() -> None:
    params = template()["Parameters"]
    defaults = {
        "PROVIDER_MAX_TASKS_IN_FLIGHT": params["ProviderMaxTasksInFlight"]["Default"],
        "MAX_QUEUE_SECONDS": params["MaxQueueSeconds"]["Default"],
        "CAPACITY_HEARTBEAT_SECONDS": params["CapacityHeartbeatSeconds"]["Default"],
        "DEADLINE_SECONDS": params["DeadlineSeconds"]["Default"],
        "MAX_POLLS": params["MaxPolls"]["Default"],
    }
    settings = ProviderSettings.from_env({**PROVIDER_ENV, **{k: str(v) for k, v in defaults.items()}})
    limits = settings.time_limits()
    assert limits.problems() == []
    assert limits.history_events() < 25_000
    # The settings' own defaults are the template's (a function deployed without the variable agrees).
    bare = JobsSettings.from_env({"JOBS_TABLE": "t"})
    assert (bare.provider_max_tasks_in_flight, bare.max_queue_seconds, bare.capacity_heartbeat_seconds) == (
        defaults["PROVIDER_MAX_TASKS_IN_FLIGHT"],
        defaults["MAX_QUEUE_SECONDS"],
        defaults["CAPACITY_HEARTBEAT_SECONDS"],
    )
    for name in ("PROVIDER_MAX_TASKS_IN_FLIGHT", "MAX_QUEUE_SECONDS", "CAPACITY_HEARTBEAT_SECONDS"):
        assert name in template()["Globals"]["Function"]["Environment"]["Variables"]


def test_max_polls_maximum_is_what_fits_the_history_with_push_wakes() -> None:
    params = template()["Parameters"]
    env = {
        "MAX_QUEUE_SECONDS": str(params["MaxQueueSeconds"]["Default"]),
        "CAPACITY_HEARTBEAT_SECONDS": str(params["CapacityHeartbeatSeconds"]["Default"]),
        "PUSH_COMPLETION": "true",
    }
    most = params["MaxPolls"]["MaxValue"]
    limits = ProviderSettings.from_env({**PROVIDER_ENV, **env, "MAX_POLLS": str(most)}).time_limits()
    assert most == limits.most_polls()
    assert limits.history_events() <= 25_000
    # One more poll turn (with every wake and capacity turn) would pass Step Functions' limit.
    assert replace(limits, max_polls=most + 1).history_events() > 25_000
    assert ProviderSettings.model_fields["max_polls"].metadata[-1].le == most


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"MAX_QUEUE_SECONDS": "80000"}, "over the state machine's TimeoutSeconds"),
        ({"CAPACITY_HEARTBEAT_SECONDS": "1", "MAX_QUEUE_SECONDS": "40000"}, "history events"),
        ({"MAX_POLLS": "1536", "CAPACITY_HEARTBEAT_SECONDS": "300"}, "history events"),
    ],
)
def test_limits_that_do_not_agree_stop_the_function_at_cold_start(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        ProviderSettings.from_env({**PROVIDER_ENV, **env})


def test_the_sweeper_must_look_back_over_a_workflows_whole_life() -> None:
    env = {"JOBS_TABLE": "t", "DASHSCOPE_SECRET_ID": "s", "TOPIC_ARN": "arn:aws:sns:us-east-1:1:t"}
    with pytest.raises(ConfigError, match="sweep_lookback_hours"):
        SweeperSettings.from_env({**env, "STATE_MACHINE_ARN": "arn:x", "SWEEP_LOOKBACK_HOURS": "23"})


# -- the park step's hand-over --------------------------------------------------------------------


class OneJob:
    def __init__(self, parked: Parked | None) -> None:
        self.parked = parked

    def park(self, job_id: str, *, token: str, now: datetime) -> Parked | None:
        return self.parked

    def owner_of_task(self, task_id: str) -> str | None:
        return None


class Waker:
    def __init__(self) -> None:
        self.woken: list[str] = []

    def wake(self, token: str) -> bool:
        self.woken.append(token)
        return True


@pytest.mark.parametrize(
    ("parked", "stays"),
    [
        (Parked(hint_pending=False, finished=False, queued=True), True),  # still queued: waits
        (Parked(hint_pending=False, finished=False, queued=False), False),  # admitted meanwhile
        (Parked(hint_pending=False, finished=True, queued=True), False),  # canceled while queued
        (None, False),  # no such job
    ],
)
def test_a_capacity_wait_stays_parked_only_while_its_job_is_queued(
    parked: Parked | None, stays: bool
) -> None:
    store, waker = OneJob(parked), Waker()
    deps = PushDeps(tasks=store, push=store, waker=waker, token=lambda: "")
    request = ParkRequest(job_id="job-1", token="tok", purpose=ParkPurpose.CAPACITY)

    result = park_wait(request, deps)

    assert result.parked is stays and waker.woken == ([] if stays else ["tok"])


# -- what a WAITING job shows ---------------------------------------------------------------------


def test_the_expected_start_counts_other_owners_turns_and_rounds_of_the_cap() -> None:
    # Alice's job with 2 of hers ahead; Bob has 5 queued, Carol 1: 2 + 3 + 1 = 6 admitted before it
    queued = {"alice": 3, "bob": 5, "carol": 1}
    base = {"owner": "alice", "queued": queued, "generation_seconds": 100.0}
    assert seconds_to_start(position=2, cap=4, held=4, **base) == 200.0  # rounds 0..5 -> 2 rounds
    assert seconds_to_start(position=0, cap=4, held=1, **base) == 0.0  # 2 ahead, 3 free: now
    assert seconds_to_start(position=0, cap=4, held=2, **base) == 100.0  # 2 ahead take the 2 free
    assert seconds_to_start(position=0, cap=1, held=1, **base) == 300.0  # Bob's and Carol's turn first


class Places:
    def place(self, job_id: str, owner: str | None, key: str) -> QueuePlace:
        return QueuePlace(position=1, owner=owner or "-", queued={owner or "-": 2}, cap=1, held=1)


class Timings:
    def history(self, tier: GenerationTier) -> TierHistory:
        return TierHistory(queue=(10.0,), run=(50.0,))


def test_a_waiting_job_read_by_id_shows_its_place_and_expected_start() -> None:
    job = JobRecord.model_validate(
        {"pk": "job-1", "status": "WAITING", "request": {"size": "640*360"}, "queue_key": "k", "owner": "a"}
    )
    ctx = ViewContext(now=NOW, timings=Timings(), queue=Places())

    view = capacity_view(job, ctx)

    assert view is not None and view.position == 1
    assert view.expected_start_at == iso(NOW + timedelta(seconds=120))  # 1 ahead, cap 1 full: 2 rounds
    assert capacity_view(job, ViewContext(now=NOW, timings=Timings())) is None  # listings: not shown
    running = job.model_copy(update={"status": JobStatus.RUNNING})
    assert capacity_view(running, ctx) is None


def test_the_cli_shows_the_place_and_the_expected_start() -> None:
    job = {
        "status": "WAITING",
        "progress": {
            "phase": "waiting_for_capacity",
            "capacity": {"position": 3, "expected_start_at": "2026-12-06T10:01:00Z"},
        },
    }
    facts = progress_facts(job, NOW)
    assert facts == ProgressFacts("waiting_for_capacity", None, None, queue_position=3, starts_in=60.0)
    assert format_progress("WAITING", 5, 0, "j", facts) == (
        "[   5s] WAITING     polls=0 waiting_for_capacity 3 ahead starts in 60s j"
    )
