"""The push hints and the parked wait's token on a job item (see t2v.push: each write returns what
the other side wrote)."""

from __future__ import annotations

from datetime import datetime

from botocore.exceptions import ClientError

from t2v.adapters import is_conditional_failure
from t2v.adapters.jobs_table import TERMINAL_VALUES, JobsTable
from t2v.capacity import MAX_PUSH_WAKES
from t2v.jobs import HintRecorded, Parked
from t2v.times import iso


class PushRecords(JobsTable):
    def record_hint(self, job_id: str, *, event_id: str, now: datetime) -> HintRecorded:
        """Record a task-finished push on the job, once per event id and at most MAX_PUSH_WAKES times
        (the ids stay a few kilobytes); returns the parked token."""
        try:
            item = self._table.update_item(
                Key={"pk": job_id},
                UpdateExpression="SET hint_at = :now ADD push_events :ids, pushes :one",
                ConditionExpression=(
                    "attribute_exists(pk) AND NOT contains(push_events, :id)"
                    " AND (attribute_not_exists(pushes) OR pushes < :most)"
                ),
                ExpressionAttributeValues={
                    ":now": iso(now),
                    ":ids": {event_id},
                    ":id": event_id,
                    ":one": 1,
                    ":most": MAX_PUSH_WAKES,
                },
                ReturnValues="ALL_NEW",
            ).get("Attributes", {})
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            seen = self._table.get_item(Key={"pk": job_id}, ProjectionExpression="pushes").get("Item") or {}
            spent = int(seen.get("pushes", 0)) >= MAX_PUSH_WAKES  # type: ignore[arg-type]
            return HintRecorded(duplicate=not spent, finished=False, token=None, spent=spent)
        token = item.get("wait_token")
        return HintRecorded(
            duplicate=False,
            finished=str(item.get("status")) in TERMINAL_VALUES,
            token=str(token) if token else None,
        )

    def park(self, job_id: str, *, token: str, now: datetime) -> Parked | None:
        """Store the task token of the job's parked wait; None when the job does not exist."""
        try:
            item = self._table.update_item(
                Key={"pk": job_id},
                UpdateExpression="SET wait_token = :token, parked_at = :now",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":token": token, ":now": iso(now)},
                ReturnValues="ALL_NEW",
            ).get("Attributes", {})
        except ClientError as exc:
            if is_conditional_failure(exc):
                return None
            raise
        hint, checked = item.get("hint_at"), item.get("checked_at")
        # ISO timestamps of one format compare as strings; a push at or after the turn's start is news.
        pending = bool(hint) and (not checked or str(hint) >= str(checked))
        return Parked(
            hint_pending=pending,
            finished=str(item.get("status")) in TERMINAL_VALUES,
            queued=bool(item.get("queue_owner")) and not item.get("lease_at"),
        )
