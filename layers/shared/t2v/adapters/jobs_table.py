"""The jobs table: one DynamoDB table (hash key `pk`) holding several record kinds, a repository each.

- `<job_id>`          a job (`kind = "job"`; GSIs `by_created` on kind + created_at and `by_owner` on
                      owner + created_at, for listing): `t2v.adapters.jobs_repo.JobsRepository`, which
                      also keeps the job's create claim. On the same item, each under its own repository:
                      the announcement claim and marks (`announcements.AnnouncementClaims`) and the push
                      hints and parked wait (`push_records.PushRecords`)
- `task#<task_id>`    which job owns a provider task (so reconciliation never adopts a task twice, and a
                      push finds its job): `task_owners.TaskOwners`
- `budget#<date>`     billed seconds used that UTC day: `budget.BudgetLedger`
- `idem#<key>`        an API idempotency key and the job it started: `idempotency.IdempotencyKeys`
- `stats#…`, `slot#…` what the poll schedule shares (`t2v.adapters.poll_stats`); `stats#active` is kept
                      in step with jobs gaining a task (`TaskOwners`) and ending (`JobsRepository`)

Every state change is a conditional write. Jobs come back as `JobRecord`s, parsed once here. A write
whose caller needs the new state asks DynamoDB for it (`ReturnValues`, and
`ReturnValuesOnConditionCheckFailure` for the state that refused the write) instead of reading again.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Final

from botocore.exceptions import ClientError

from t2v.adapters import DynamoTable, is_conditional_failure
from t2v.adapters.poll_stats import ACTIVE_KEY
from t2v.errors import PipelineError
from t2v.jobs import TERMINAL, JobRecord, Write

TERMINAL_VALUES: Final = frozenset(status.value for status in TERMINAL)


def plain(value: Any) -> Any:
    """DynamoDB gives numbers as Decimal; hand the rest of the code plain ints and floats."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def to_dynamo(value: Any) -> Any:
    """The inverse of `plain`: DynamoDB refuses Python floats."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def job_record(item: dict[str, Any]) -> JobRecord:
    return JobRecord.model_validate(plain(item))


def refusing_item(exc: ClientError) -> dict[str, Any] | None:
    """The item that failed a write's condition (`ReturnValuesOnConditionCheckFailure=ALL_OLD`),
    which the low-level error carries in DynamoDB's typed JSON."""
    raw: Any = dict(exc.response).get("Item")
    if not isinstance(raw, dict) or not raw:
        return None
    from boto3.dynamodb.types import TypeDeserializer  # boto3 is loaded by now: a client made the call

    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in raw.items()}


class JobsTable(DynamoTable):
    """What the repositories of the jobs table share: reading a job and writing its item."""

    def _read_job(self, job_id: str) -> JobRecord | None:
        item = self._table.get_item(Key={"pk": job_id}, ConsistentRead=True).get("Item")
        return job_record(item) if item and item.get("kind") == "job" else None

    def _put_new(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """Write `item` unless an item with its key exists: None when written, else the one there."""
        try:
            self._table.put_item(
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            existing = refusing_item(exc) if is_conditional_failure(exc) else None
            if existing is None:
                raise
            return existing
        return None

    def _update(self, job_id: str, **kwargs: Any) -> Write:
        """One conditional update of a job: the new job when made, the refusing one when not."""
        try:
            item = self._table.update_item(
                Key={"pk": job_id},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **kwargs,
            )["Attributes"]
        except ClientError as exc:
            current = refusing_item(exc) if is_conditional_failure(exc) else None
            if current is None:
                if is_conditional_failure(exc):
                    raise PipelineError(f"job {job_id} not found") from None
                raise
            return Write(False, job_record(current))
        return Write(True, job_record(item))

    def _settle_batch_line(self, job: JobRecord) -> None:
        """Count a batch line's end on its batch, once: its id leaves the batch's `active` set in the
        same write that counts it, on condition that it is still there (t2v.adapters.batches_repo)."""
        from t2v.batches import batch_key  # only batch lines need it

        try:
            self._table.update_item(
                Key={"pk": batch_key(str(job.batch_id))},
                UpdateExpression="DELETE active :j ADD #n :one",
                ConditionExpression="contains(active, :id)",
                ExpressionAttributeNames={"#n": f"ended_{job.status.value}"},
                ExpressionAttributeValues={":j": {job.job_id}, ":id": job.job_id, ":one": 1},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def _count_active(self, delta: int) -> None:
        """The account-wide count of running jobs the poll schedule shares its budget among."""
        self._table.update_item(
            Key={"pk": ACTIVE_KEY}, UpdateExpression="ADD n :d", ExpressionAttributeValues={":d": delta}
        )
