"""The `batch#<id>` items of the jobs table: one per batch (`t2v.batches`).

A batch item's `kind` is `batch#<owner>`, so the table's `by_created` index (kind + created_at) lists
one owner's batches newest first without an index of its own. Its `active` string set holds the job
ids of its lines that were recorded and have not ended (one Map window at most): a line's end moves
its id out and counts it (`ended_<STATUS>`) in one conditional write, so a line is counted once
however often its end is written (`JobsTable._settle_batch_line`). Reserving the batch's seconds and
giving back what did not run are transactions with the budget counters (`BudgetLedger`).
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from t2v.adapters import is_conditional_failure
from t2v.adapters.budget import BudgetLedger
from t2v.adapters.jobs_table import job_record, plain, to_dynamo
from t2v.batches import BATCH_PREFIX, BatchRecord, BatchStatus, batch_key
from t2v.billing import ACCOUNT, CALLER, Caps, day_key
from t2v.errors import BudgetExceededError, PipelineError
from t2v.jobs import TERMINAL, JobRecord
from t2v.times import iso

NO_OWNER: Final = "-"
BATCH_ID: Final = re.compile(r"batch-[0-9A-Za-z_-]{1,80}")  # what derive_batch_id makes, and no more
ENDED_PREFIX: Final = "ended_"


def batch_kind(owner: str | None) -> str:
    return f"batch#{owner or NO_OWNER}"


def batch_record(item: dict[str, Any]) -> BatchRecord:
    data = plain(item)
    data["counts"] = {s.value: int(data.get(f"{ENDED_PREFIX}{s.value}", 0)) for s in TERMINAL}
    data["active"] = sorted(data.get("active") or [])
    data["owner"] = data.get("batch_owner")
    return BatchRecord.model_validate(data)


class BatchesRepository(BudgetLedger):
    # -- reads -----------------------------------------------------------------------------------
    def get(self, batch_id: str) -> BatchRecord | None:
        if not BATCH_ID.fullmatch(batch_id):  # anything else names no batch (and no other item)
            return None
        item = self._table.get_item(Key={"pk": batch_key(batch_id)}, ConsistentRead=True).get("Item")
        return batch_record(item) if item else None

    def list_for(
        self, owner: str | None, *, limit: int, cursor: str | None
    ) -> tuple[list[BatchRecord], str | None]:
        kwargs: dict[str, Any] = {
            "IndexName": "by_created",
            "KeyConditionExpression": "kind = :k",
            "ExpressionAttributeValues": {":k": batch_kind(owner)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor is not None:
            kwargs["ExclusiveStartKey"] = _decode(cursor, batch_kind(owner))
        page = self._table.query(**kwargs)
        last = page.get("LastEvaluatedKey")
        return [batch_record(i) for i in page.get("Items", [])], _encode(last) if last else None

    def jobs(self, job_ids: list[str]) -> dict[str, JobRecord]:
        """The jobs among `job_ids` that exist (BatchGetItem, 100 at a time, consistent reads)."""
        found: dict[str, JobRecord] = {}
        client = self._table.meta.client
        for start in range(0, len(job_ids), 100):
            keys: list[dict[str, Any]] = [{"pk": job_id} for job_id in job_ids[start : start + 100]]
            request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            for _ in range(20):
                answer = client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    if str(item.get("kind")) == "job":
                        record = job_record(item)
                        found[record.job_id] = record
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise PipelineError("DynamoDB left keys unprocessed after 20 tries")
        return found

    # -- writes ----------------------------------------------------------------------------------
    def create_if_absent(
        self,
        batch_id: str,
        *,
        owner: str | None,
        source: str,
        file: dict[str, Any],
        notify_lines: bool,
        execution: str | None,
        now: datetime,
    ) -> tuple[BatchRecord, bool]:
        item: dict[str, Any] = {
            "pk": batch_key(batch_id),
            "kind": batch_kind(owner),
            "batch_id": batch_id,
            "status": BatchStatus.READING.value,
            "source": source,
            "file": {k: v for k, v in file.items() if v is not None},
            "notify_lines": notify_lines,
            "created_at": iso(now),
            "updated_at": iso(now),
        }
        if owner:
            item["batch_owner"] = owner
        if execution:
            item["execution"] = execution
        existing = self._put_new(to_dynamo(item))
        if existing is not None:
            return batch_record(existing), False
        return batch_record(item), True

    def accept(
        self,
        batch_id: str,
        *,
        fields: dict[str, Any],
        day: str,
        seconds: int,
        caps: Caps | None,
        now: datetime,
    ) -> BatchRecord:
        """READING -> RUNNING with the reading's numbers, and the batch's seconds reserved from the day's
        budgets in the same transaction (BudgetExceededError names the budget; nothing written)."""
        values = {
            ":now": iso(now),
            ":running": BatchStatus.RUNNING.value,
            ":reading": BatchStatus.READING.value,
        }
        sets = ["#s = :running", "updated_at = :now", "started_at = :now"]
        names = {"#s": "status"}
        for i, (name, value) in enumerate({**fields, "reserved_seconds": seconds, "budget_day": day}.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = value
            sets.append(f"#f{i} = :f{i}")
        update = {
            "Update": {
                "TableName": self.table_name,
                "Key": {"pk": batch_key(batch_id)},
                "UpdateExpression": "SET " + ", ".join(sets),
                "ConditionExpression": "#s = :reading",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_dynamo(values),
            }
        }
        if caps is not None and seconds:
            # More than a whole day's budget: refused before the transaction, whose counters' condition
            # passes on a day not counted yet (`attribute_not_exists(used_seconds)`).
            if caps.account and seconds > caps.account:
                raise BudgetExceededError(_short(ACCOUNT, caps, seconds, self._left(day, ACCOUNT, caps)))
            if caps.owner and caps.caller and seconds > caps.caller:
                raise BudgetExceededError(_short(CALLER, caps, seconds, self._left(day, CALLER, caps)))
        items = [update]
        if caps is not None and seconds:
            items.append(self._counter(day_key(day), seconds, caps.account))
            if caps.owner:
                items.append(self._counter(day_key(day, caps.owner), seconds, caps.caller))
        failed = self._transact(items)
        if failed == 1:
            raise BudgetExceededError(_short(ACCOUNT, caps, seconds, self._left(day, ACCOUNT, caps)))
        if failed == 2:
            raise BudgetExceededError(_short(CALLER, caps, seconds, self._left(day, CALLER, caps)))
        batch = self.get(batch_id)
        if batch is None:
            raise PipelineError(f"batch {batch_id} not found")
        return batch

    def _left(self, day: str, which: str, caps: Caps | None) -> int:
        """What is left today of the account's budget (ACCOUNT) or the batch owner's (CALLER)."""
        if caps is None:
            return 0
        if which == CALLER and caps.owner:
            return max(0, caps.caller - self.day_usage(day, caps.owner).caller.used)
        return max(0, caps.account - self.budget_used(day))

    def set_status(
        self,
        batch_id: str,
        status: BatchStatus,
        *,
        now: datetime,
        allowed: tuple[BatchStatus, ...],
        fields: dict[str, Any] | None = None,
    ) -> tuple[bool, BatchRecord | None]:
        """Move the batch to `status` if it is in one of `allowed`; (moved, the batch as it stands)."""
        names = {"#s": "status"}
        values: dict[str, Any] = {":new": status.value, ":now": iso(now)}
        sets = ["#s = :new", "updated_at = :now"]
        if status.is_terminal:
            sets.append("finished_at = :now")
        if status == BatchStatus.CANCELING:
            sets.append("canceled_at = :now")
        for i, (name, value) in enumerate((fields or {}).items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = value
            sets.append(f"#f{i} = :f{i}")
        for i, s in enumerate(allowed):
            values[f":a{i}"] = s.value
        condition = f"#s IN ({', '.join(f':a{i}' for i in range(len(allowed)))})"
        try:
            item = self._table.update_item(
                Key={"pk": batch_key(batch_id)},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_dynamo(values),
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            return False, self.get(batch_id)
        return True, batch_record(item)

    def add_active(self, batch_id: str, job_ids: list[str], *, now: datetime) -> None:
        """The lines about to be recorded: in the set before their jobs exist, so an end always finds them."""
        if not job_ids:
            return
        self._table.update_item(
            Key={"pk": batch_key(batch_id)},
            UpdateExpression="ADD active :ids SET updated_at = :now",
            ExpressionAttributeValues={":ids": set(job_ids), ":now": iso(now)},
        )

    def forget_active(self, batch_id: str, job_ids: list[str]) -> None:
        """Lines whose jobs were never recorded (the batch was canceled first)."""
        if job_ids:
            self._table.update_item(
                Key={"pk": batch_key(batch_id)},
                UpdateExpression="DELETE active :ids",
                ExpressionAttributeValues={":ids": set(job_ids)},
            )

    def finish(
        self,
        batch: BatchRecord,
        status: BatchStatus,
        *,
        counts: dict[str, int],
        release: int,
        fields: dict[str, Any],
        now: datetime,
    ) -> BatchRecord:
        """End the batch with its exact counts, giving back `release` reserved seconds that did not
        run, once: one transaction conditioned on the batch not having ended."""
        names = {"#s": "status"}
        values: dict[str, Any] = {
            ":new": status.value,
            ":now": iso(now),
            ":release": release,
            ":running": BatchStatus.RUNNING.value,
            ":canceling": BatchStatus.CANCELING.value,
        }
        sets = ["#s = :new", "updated_at = :now", "finished_at = :now", "released_seconds = :release"]
        for i, (name, value) in enumerate(
            {**{f"{ENDED_PREFIX}{k}": v for k, v in counts.items()}, **fields}.items()
        ):
            names[f"#f{i}"] = name
            values[f":f{i}"] = value
            sets.append(f"#f{i} = :f{i}")
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"pk": batch_key(batch.batch_id)},
                    "UpdateExpression": "SET " + ", ".join(sets),
                    "ConditionExpression": "#s IN (:running, :canceling)",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": to_dynamo(values),
                }
            }
        ]
        if release and batch.budget_day:
            items.append(self._giveback(day_key(batch.budget_day), release))
            if batch.owner:
                items.append(self._giveback(day_key(batch.budget_day, batch.owner), release))
        self._transact(items)  # refused: it ended before (a retry); read it as it stands
        ended = self.get(batch.batch_id)
        if ended is None:
            raise PipelineError(f"batch {batch.batch_id} not found")
        return ended

    def settle_line(self, job: JobRecord) -> None:
        """Count an ended line once (see `JobsTable._settle_batch_line`)."""
        if job.batch_id and job.status.is_terminal:
            self._settle_batch_line(job)

    def mark(self, batch_id: str, field: str, *, now: datetime) -> bool:
        """Set `notified_at` or `event_sent_at` once; False when it was set before."""
        try:
            self._table.update_item(
                Key={"pk": batch_key(batch_id)},
                UpdateExpression="SET #m = :now",
                ConditionExpression="attribute_not_exists(#m)",
                ExpressionAttributeNames={"#m": field},
                ExpressionAttributeValues={":now": iso(now)},
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True


def _short(which: str, caps: Caps | None, seconds: int, left: int) -> str:
    cap = 0 if caps is None else (caps.account if which == ACCOUNT else caps.caller)
    return (
        f"the batch needs {seconds} billed video seconds; the {which}'s daily budget of {cap} has {left} left "
        "today: split the file or raise the budget"
    )


def _encode(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(plain(key)).encode()).decode()


def _decode(cursor: str, kind: str) -> dict[str, Any]:
    """The start key a cursor of this owner's listing stands for; InvalidCursorError for any other
    (forged, truncated, another owner's or another listing's)."""
    from t2v.errors import InvalidCursorError

    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        raise InvalidCursorError("not a cursor this API gave") from None
    if (
        not isinstance(key, dict)
        or set(key) != {"pk", "kind", "created_at"}
        or not all(isinstance(v, str) for v in key.values())
        or key["kind"] != kind
        or not BATCH_ID.fullmatch(str(key["pk"]).removeprefix(BATCH_PREFIX))
    ):
        raise InvalidCursorError("not a cursor this API gave")
    return key
