"""Progress and expected finish of a job, from the tier's timings and the provider's own times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from t2v.jobs import JobStatus
from t2v.progress import Estimate, Phase, ProgressInput, job_progress
from t2v.schedule import TierHistory

T0 = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)
# Every similar task queued 2 s and ran 18 s: expected 20 s after submission.
HISTORY = TierHistory(queue=(2.0,) * 5, run=(18.0,) * 5)


def job(
    status: JobStatus, *, queued: float | None = None, submitted: bool = True, asked_before: float = 0.0
) -> ProgressInput:
    return ProgressInput(
        status=status,
        created_at=T0 - timedelta(seconds=asked_before),
        submitted_at=T0 if submitted else None,
        finished_at=T0 + timedelta(seconds=25) if status.is_terminal else None,
        queued_seconds=queued,
    )


def test_a_queued_job_expects_its_tiers_time_and_the_fraction_moves_with_the_clock() -> None:
    early = job_progress(job(JobStatus.SUBMITTED), HISTORY, T0 + timedelta(seconds=5))
    later = job_progress(job(JobStatus.SUBMITTED), HISTORY, T0 + timedelta(seconds=10))
    assert early == Estimate(Phase.QUEUED, T0 + timedelta(seconds=20), 0.25)
    assert later.fraction == 0.5
    assert later.expected_finish == early.expected_finish


def test_before_submission_the_estimate_starts_at_acceptance() -> None:
    estimate = job_progress(job(JobStatus.ACCEPTED, submitted=False, asked_before=1), HISTORY, T0)
    assert estimate.phase == Phase.QUEUED
    assert estimate.expected_finish == T0 + timedelta(seconds=19)


def test_the_fraction_counts_from_the_request_so_submission_never_sets_it_back() -> None:
    # Accepted 4 s before the provider took the task: 4 s of 24 before, 6 s of 26 just after
    before = job_progress(job(JobStatus.ACCEPTED, submitted=False, asked_before=4), HISTORY, T0)
    after = job_progress(job(JobStatus.SUBMITTED, asked_before=4), HISTORY, T0 + timedelta(seconds=2))
    assert before.fraction is not None and after.fraction is not None
    assert after.fraction > before.fraction
    assert after.expected_finish == T0 + timedelta(seconds=20)
    assert after.fraction == round(6 / 24, 3)


def test_a_running_job_uses_the_providers_own_queue_time() -> None:
    # The provider says it queued 6 s (not the usual 2): the run of 18 s starts from there.
    estimate = job_progress(job(JobStatus.RUNNING, queued=6.0), HISTORY, T0 + timedelta(seconds=12))
    assert estimate == Estimate(Phase.RUNNING, T0 + timedelta(seconds=24), 0.5)


def test_a_pending_job_seen_late_starts_no_earlier_than_now() -> None:
    estimate = job_progress(job(JobStatus.PENDING), HISTORY, T0 + timedelta(seconds=10))
    assert estimate.expected_finish == T0 + timedelta(seconds=28)


def test_past_every_prediction_the_finish_is_unknown_not_invented() -> None:
    estimate = job_progress(job(JobStatus.SUBMITTED), HISTORY, T0 + timedelta(seconds=60))
    assert estimate == Estimate(Phase.QUEUED, None, None)


def test_downloading_and_ended_jobs() -> None:
    assert job_progress(job(JobStatus.DOWNLOADING), HISTORY, T0) == Estimate(Phase.DOWNLOADING)
    done = job_progress(job(JobStatus.SUCCEEDED), HISTORY, T0 + timedelta(seconds=30))
    assert done == Estimate(Phase.DONE, T0 + timedelta(seconds=25), 1.0)
    failed = job_progress(job(JobStatus.FAILED), HISTORY, T0 + timedelta(seconds=30))
    assert failed.fraction is None


def test_an_open_job_is_never_shown_done() -> None:
    wide = TierHistory(queue=(0.0,), run=(10.0, 100.0))
    estimate = job_progress(job(JobStatus.RUNNING, queued=0.0), wide, T0 + timedelta(seconds=99))
    assert estimate.fraction is not None
    assert estimate.fraction <= 0.99


def test_a_move_to_running_never_sets_the_fraction_back() -> None:
    # Given a job that looked 93 % done while queued (the tier expects 20 s), then ran: the provider
    # says it queued 12 s, so the run of 18 s ends at 30 s, and 19 s alone would read 63 %
    moves = (
        (JobStatus.ACCEPTED, T0),
        (JobStatus.SUBMITTED, T0),
        (JobStatus.RUNNING, T0 + timedelta(seconds=18.6)),
    )
    queued = job_progress(job(JobStatus.SUBMITTED), HISTORY, T0 + timedelta(seconds=18.6))
    assert queued.fraction == 0.93
    running = ProgressInput(
        status=JobStatus.RUNNING,
        created_at=T0,
        submitted_at=T0,
        finished_at=None,
        queued_seconds=12.0,
        history=moves,
    )
    # When it is read just after the move, and later
    just_after = job_progress(running, HISTORY, T0 + timedelta(seconds=19))
    later = job_progress(running, HISTORY, T0 + timedelta(seconds=29))
    # Then the fraction holds at what the queued phase showed last, the finish is the provider's, and
    # the fraction moves on once the run's own estimate passes it
    assert just_after == Estimate(Phase.RUNNING, T0 + timedelta(seconds=30), 0.93)
    assert later.fraction == round(29 / 30, 3)
    without_history = job_progress(
        ProgressInput(JobStatus.RUNNING, T0, T0, None, 12.0), HISTORY, T0 + timedelta(seconds=19)
    )
    assert without_history.fraction == round(19 / 30, 3)  # the floor comes from the job's own moves
