"""The announcement claim and marks on a job item (`t2v.usecases.announce` claims, publishes, marks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from t2v.adapters import is_conditional_failure
from t2v.adapters.jobs_table import JobsTable
from t2v.jobs import Write
from t2v.times import iso


class AnnouncementClaims(JobsTable):
    def claim_notification(self, job_id: str, *, token: str, now: datetime, stale_before: datetime) -> Write:
        """Take the right to announce the job's outcome: not fully announced (the EventBridge event comes
        last) and nobody holds a live claim.

        A claim older than `stale_before` belongs to an invocation that died before it marked the job
        notified (it may or may not have published): taking it over re-publishes, at least once.
        """
        return self._update(
            job_id,
            UpdateExpression="SET notify_claim = :token, notify_claimed_at = :now ADD notify_attempts :one",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(event_sent_at) "
            "AND (attribute_not_exists(notify_claimed_at) OR notify_claimed_at < :stale)",
            ExpressionAttributeValues={
                ":token": token,
                ":now": iso(now),
                ":stale": iso(stale_before),
                ":one": 1,
            },
        )

    def mark_notified(self, job_id: str, *, now: datetime, message_id: str | None = None) -> bool:
        """Record that the outcome was announced (one write, right after the publish). False if it already was."""
        values: dict[str, Any] = {":now": iso(now)}
        update = "SET notified_at = :now"
        if message_id:
            values[":mid"] = message_id
            update += ", notification_id = :mid"
        try:
            self._table.update_item(
                Key={"pk": job_id},
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(notified_at)",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True
