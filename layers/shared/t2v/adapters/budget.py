"""The `budget#<date>` items of the jobs table (the account's day) and `budget#<date>#<owner>` (one
caller's day): billed seconds charged and refunded each UTC day, and the job's marks that it was
charged (`budget_day`) and refunded (`refunded_at`). `t2v.adapters.jobs_table` lays the table out.

Each charge and each refund is one TransactWriteItems over the job and both counters, conditioned on
the job's mark: it applies whole or not at all, once per job, under retries and duplicate deliveries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from t2v.adapters.jobs_table import JobsTable
from t2v.billing import ACCOUNT, CALLER, Caps, DayCounter, DayUsage, day_key
from t2v.errors import BudgetExceededError
from t2v.jobs import JobRecord
from t2v.times import iso


class BudgetLedger(JobsTable):
    def charge_budget(self, job: JobRecord, *, day: str, seconds: int, caps: Caps, now: datetime) -> bool:
        """Add the job's billed seconds to the account's and its owner's day, at most once per job.

        `job` is the job as the caller read it: one already charged is not charged again (nor refused,
        when a concurrent attempt charged it since). One transaction: the job's mark
        (`attribute_not_exists(budget_day)`) and both counters' room, so no window over-counts.
        Raises BudgetExceededError naming the budget that would be passed.
        """
        if job.budget_day:
            return True
        for cap, which in ((caps.account, ACCOUNT), (caps.caller if caps.owner else 0, CALLER)):
            if cap and seconds > cap:
                raise BudgetExceededError(
                    f"the request's {seconds} billed seconds exceed the {which}'s daily budget of {cap}"
                )
        mark = self._item(
            job.job_id,
            "SET budget_day = :day, billed_seconds = :n, updated_at = :now"
            + (", budget_owner = :owner" if caps.owner else ""),
            condition="attribute_exists(pk) AND attribute_not_exists(budget_day)",
            values={
                ":day": day,
                ":n": seconds,
                ":now": iso(now),
                **({":owner": caps.owner} if caps.owner else {}),
            },
        )
        items = [mark, self._counter(day_key(day), seconds, caps.account)]
        if caps.owner:
            items.append(self._counter(day_key(day, caps.owner), seconds, caps.caller))
        failed = self._transact(items)
        if failed is None:
            return True
        if failed == 0:
            return True  # a concurrent attempt charged the job after `job` was read: nothing to add
        which, cap = (ACCOUNT, caps.account) if failed == 1 else (CALLER, caps.caller)
        raise BudgetExceededError(
            f"the {which}'s daily budget of {cap} billed video seconds would be exceeded by this request's {seconds} s"
        )

    def refund(self, job: JobRecord, *, now: datetime) -> bool:
        """Give the job's charge back to the counters of the day it was charged, exactly once: one
        transaction with the job's `refunded_at` mark. False: refunded before (or never charged)."""
        if not job.budget_day or not job.billed_seconds or job.refunded_at is not None:
            return False
        day, seconds = job.budget_day, job.billed_seconds
        mark = self._item(
            job.job_id,
            "SET refunded_at = :now",
            condition="attribute_exists(budget_day) AND attribute_not_exists(refunded_at)",
            values={":now": iso(now)},
        )
        items = [mark, self._giveback(day_key(day), seconds)]
        if job.budget_owner:
            items.append(self._giveback(day_key(day, job.budget_owner), seconds))
        return self._transact(items) is None

    def budget_used(self, day: str) -> int:
        """Billed seconds charged and not refunded on `day`, account-wide."""
        return self._counter_of(day_key(day)).used

    def day_usage(self, day: str, owner: str) -> DayUsage:
        """The account's and `owner`'s counters of `day`."""
        return DayUsage(self._counter_of(day_key(day)), self._counter_of(day_key(day, owner)))

    def _counter_of(self, key: str) -> DayCounter:
        item = self._table.get_item(Key={"pk": key}, ConsistentRead=True).get("Item") or {}
        charged = int(item.get("used_seconds", 0)) + int(item.get("refunded_seconds", 0))  # type: ignore[arg-type]
        return DayCounter(charged=charged, refunded=int(item.get("refunded_seconds", 0)))  # type: ignore[arg-type]

    def _counter(self, key: str, seconds: int, cap: int) -> dict[str, Any]:
        """`used_seconds` holds what is charged and not refunded: what a cap compares with."""
        if not cap:
            return self._item(key, "ADD used_seconds :n", values={":n": seconds})
        return self._item(
            key,
            "ADD used_seconds :n",
            condition="attribute_not_exists(used_seconds) OR used_seconds <= :room",
            values={":n": seconds, ":room": cap - seconds},
        )

    def _giveback(self, key: str, seconds: int) -> dict[str, Any]:
        return self._item(
            key, "ADD used_seconds :minus, refunded_seconds :n", values={":minus": -seconds, ":n": seconds}
        )

    def _item(
        self, pk: str, expression: str, *, condition: str | None = None, values: dict[str, Any]
    ) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": pk},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if condition:
            update["ConditionExpression"] = condition
        return {"Update": update}

    def _transact(self, items: list[dict[str, Any]]) -> int | None:
        """The updates as one transaction: None when applied, else the index of the item whose
        condition refused them (nothing written)."""
        try:
            self._table.meta.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons: list[dict[str, Any]] = list(dict(exc.response).get("CancellationReasons") or [])  # type: ignore[call-overload]
            for index, reason in enumerate(reasons):
                if reason.get("Code") == "ConditionalCheckFailed":
                    return index
            raise
        return None
