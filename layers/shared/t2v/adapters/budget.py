"""The `budget#<date>` items of the jobs table: billed seconds charged each UTC day, and the job's
mark that it was charged (`t2v.adapters.jobs_table` lays the table out)."""

from __future__ import annotations

from datetime import datetime

from botocore.exceptions import ClientError

from t2v.adapters import is_conditional_failure
from t2v.adapters.jobs_table import JobsTable
from t2v.errors import BudgetExceededError
from t2v.jobs import JobRecord
from t2v.times import iso


class BudgetLedger(JobsTable):
    def charge_budget(self, job: JobRecord, *, day: str, seconds: int, cap: int, now: datetime) -> bool:
        """Atomically add the job's billed seconds to the day's counter, at most once per job.

        `job` is the job as the caller read it: one already charged is not charged again (nor refused,
        when a concurrent attempt charged it since). The counter is charged first (a conditional ADD, so
        concurrent submits cannot overshoot), then the job is marked; a charge the job's mark shows came
        second is given back, and a crash in between over-counts, which fails safe for money.
        Raises BudgetExceededError when the cap would be passed.
        """
        if job.budget_day:
            return True
        job_id = job.job_id
        if seconds > cap:
            raise BudgetExceededError(
                f"the request's {seconds} billed seconds exceed the daily budget of {cap}"
            )
        try:
            self._table.update_item(
                Key={"pk": f"budget#{day}"},
                UpdateExpression="ADD used_seconds :n",
                ConditionExpression="attribute_not_exists(used_seconds) OR used_seconds <= :room",
                ExpressionAttributeValues={":n": seconds, ":room": cap - seconds},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            current = self._read_job(job_id)
            if current is not None and current.budget_day:
                return True  # a concurrent attempt charged the job after `job` was read: nothing to add
            raise BudgetExceededError(
                f"the daily budget of {cap} billed video seconds would be exceeded by this request's {seconds} s"
            ) from None
        try:
            self._table.update_item(
                Key={"pk": job_id},
                UpdateExpression="SET budget_day = :day, billed_seconds = :n, updated_at = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(budget_day)",
                ExpressionAttributeValues={":day": day, ":n": seconds, ":now": iso(now)},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            # A concurrent attempt of the same job charged first: give our charge back.
            self._table.update_item(
                Key={"pk": f"budget#{day}"},
                UpdateExpression="ADD used_seconds :n",
                ExpressionAttributeValues={":n": -seconds},
            )
        return True

    def budget_used(self, day: str) -> int:
        """Billed seconds charged so far on `day` (the API refuses what cannot fit the rest)."""
        item = self._table.get_item(Key={"pk": f"budget#{day}"}, ConsistentRead=True).get("Item")
        return int(item.get("used_seconds", 0)) if item else 0  # type: ignore[arg-type]
