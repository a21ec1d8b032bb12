"""DynamoDB adapter for job records. Every state change is a conditional write.

Table layout (single table, hash key `pk`):
- `<job_id>`          a job (`kind = "job"`, GSI `by_created` on kind + created_at for listing)
- `task#<task_id>`    which job owns a provider task (so reconciliation never adopts a task twice,
                      and a push finds its job)
- `budget#<date>`     billed seconds used that UTC day
- `idem#<key>`        an API idempotency key and the job it started
- `stats#…`, `slot#…` what the poll schedule shares (see `t2v.adapters.poll_stats`); this module
                      keeps `stats#active` in step with jobs gaining a task and ending

Jobs come back as `JobRecord`s, parsed once here. A write whose caller needs the new state asks
DynamoDB for it (`ReturnValues`, and `ReturnValuesOnConditionCheckFailure` for the state that
refused the write) instead of reading the job again.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from t2v.adapters import DynamoTable, is_conditional_failure
from t2v.adapters.poll_stats import ACTIVE_KEY
from t2v.errors import BudgetExceededError, InvalidCursorError, PipelineError
from t2v.jobs import (
    CONTESTED,
    FOREIGN,
    TERMINAL,
    HintRecorded,
    JobRecord,
    JobStatus,
    Parked,
    Write,
    statuses_that_may_move_to,
)
from t2v.times import iso

JOB_TTL_DAYS = 90
_TERMINAL_VALUES = frozenset(status.value for status in TERMINAL)


def plain(value: Any) -> Any:
    """DynamoDB gives numbers as Decimal; hand the rest of the code plain ints and floats."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _dynamo(value: Any) -> Any:
    """The inverse of `plain`: DynamoDB refuses Python floats."""
    return json.loads(json.dumps(value), parse_float=Decimal)


# A cursor is DynamoDB's LastEvaluatedKey of the `by_created` index: the table's key and the index's.
_CURSOR_KEYS = frozenset({"pk", "kind", "created_at"})  # a start key of GSI by_created (every job)
_OWNER_CURSOR_KEYS = frozenset({"pk", "owner", "created_at"})  # a start key of GSI by_owner (one caller's)


def encode_cursor(last_key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(plain(last_key)).encode()).decode()


def decode_cursor(cursor: str, *, owner: str | None = None) -> dict[str, str]:
    """The start key a cursor stands for; raises InvalidCursorError unless it has the exact shape of
    one `list_jobs` returned for the same listing (DynamoDB would refuse anything else, and that is no
    server error): every job's (`owner` None), or `owner`'s own, never another caller's."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        key = None
    expected = _CURSOR_KEYS if owner is None else _OWNER_CURSOR_KEYS
    if (
        not isinstance(key, dict)
        or set(key) != expected
        or key.get("kind", "job") != "job"
        or key.get("owner", owner) != owner
        or not all(isinstance(v, str) and v for v in key.values())
    ):
        raise InvalidCursorError("not a cursor this API returned (use next_cursor as is)")
    return key


def _record(item: dict[str, Any]) -> JobRecord:
    return JobRecord.model_validate(plain(item))


def _refusing_item(exc: ClientError) -> dict[str, Any] | None:
    """The item that failed a write's condition (`ReturnValuesOnConditionCheckFailure=ALL_OLD`),
    which the low-level error carries in DynamoDB's typed JSON."""
    raw: Any = dict(exc.response).get("Item")
    if not isinstance(raw, dict) or not raw:
        return None
    from boto3.dynamodb.types import TypeDeserializer  # boto3 is loaded by now: a client made the call

    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in raw.items()}


class JobsRepository(DynamoTable):
    # -- reads -------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        item = self._table.get_item(Key={"pk": job_id}, ConsistentRead=True).get("Item")
        return _record(item) if item and item.get("kind") == "job" else None

    def owner_of_task(self, task_id: str) -> str | None:
        item = self._table.get_item(Key={"pk": f"task#{task_id}"}, ConsistentRead=True).get("Item")
        return str(item["job_id"]) if item else None

    def list_jobs(
        self,
        *,
        status: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
        owner: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        """Most recent first; only `owner`'s jobs when given (GSI `by_owner`), else every job.
        `cursor` is opaque to callers (base64 of DynamoDB's LastEvaluatedKey)."""
        kwargs: dict[str, Any] = {
            "IndexName": "by_created",
            "KeyConditionExpression": "#k = :job",
            "ExpressionAttributeNames": {"#k": "kind"},
            "ExpressionAttributeValues": {":job": "job"},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if owner is not None:
            kwargs.update(
                IndexName="by_owner",
                KeyConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": owner},
            )
        if status:
            kwargs["FilterExpression"] = "#s = :status"
            kwargs["ExpressionAttributeNames"]["#s"] = "status"
            kwargs["ExpressionAttributeValues"][":status"] = status
        if cursor:
            kwargs["ExclusiveStartKey"] = decode_cursor(cursor, owner=owner)
        try:
            page = self._table.query(**kwargs)
        except ClientError as exc:
            if cursor and exc.response.get("Error", {}).get("Code") == "ValidationException":
                raise InvalidCursorError("not a cursor this API returned (use next_cursor as is)") from None
            raise
        jobs = [_record(item) for item in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return jobs, encode_cursor(last) if last else None

    # -- writes ------------------------------------------------------------------------------
    def create_if_absent(
        self,
        job_id: str,
        *,
        request: dict[str, Any],
        source: str,
        origin: dict[str, Any],
        now: datetime,
        deadline_at: datetime,
        execution: str | None = None,
        owner: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """Insert the ACCEPTED job unless it exists. Returns the stored job and whether it was new."""
        item: dict[str, Any] = {
            "pk": job_id,
            "kind": "job",
            "status": JobStatus.ACCEPTED.value,
            "history": [{"status": JobStatus.ACCEPTED.value, "at": iso(now)}],
            "request": request,
            "source": source,
            "origin": origin,
            "created_at": iso(now),
            "updated_at": iso(now),
            "deadline_at": iso(deadline_at),
            "polls": 0,
            "request_ids": [],
            "expires_at": int(now.timestamp()) + JOB_TTL_DAYS * 86400,
        }
        if execution:
            item["execution"] = execution
        if owner:
            item["owner"] = owner  # who may see and cancel it (GSI by_owner)
        try:
            self._table.put_item(
                Item=_dynamo(item),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            existing = _refusing_item(exc) if is_conditional_failure(exc) else None
            if existing is None:
                raise
            return _record(existing), False
        return _record(item), True

    def claim_create(self, job_id: str, *, now: datetime, stale_before: datetime) -> Write:
        """Take the right to call the provider's create for this job.

        Succeeds when nobody holds a claim, or when the previous claim is older than `stale_before`
        (its holder crashed or its answer was lost; the caller must reconcile before creating).
        """
        return self._update(
            job_id,
            UpdateExpression="SET create_claimed_at = :now, updated_at = :now ADD create_attempts :one",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(task_id) AND #s = :accepted "
            "AND (attribute_not_exists(create_claimed_at) OR create_claimed_at < :stale)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":now": iso(now),
                ":one": 1,
                ":stale": iso(stale_before),
                ":accepted": JobStatus.ACCEPTED.value,
            },
        )

    def release_claim(self, job_id: str) -> None:
        """The create surely did not reach the provider (refused or never sent): allow a new one."""
        self._table.update_item(
            Key={"pk": job_id},
            UpdateExpression="REMOVE create_claimed_at, create_sent_at",
            ConditionExpression="attribute_not_exists(task_id)",
        )

    def contest_task(self, task_id: str, *, job_id: str, now: datetime) -> None:
        """Mark a provider task nobody could prove theirs as owned by no job, so none adopts it later
        (a later lone claimant may only be the one left, not the owner). No-op if already owned."""
        try:
            self._table.put_item(
                Item={"pk": f"task#{task_id}", "job_id": CONTESTED, "by": job_id, "created_at": iso(now)},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise

    def _query_all(self, kwargs: dict[str, Any]) -> list[JobRecord]:
        """Every job a query matches, page after page."""
        jobs: list[JobRecord] = []
        while True:
            page = self._table.query(**kwargs)
            jobs.extend(_record(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return jobs
            kwargs = {**kwargs, "ExclusiveStartKey": page["LastEvaluatedKey"]}

    def sweep_candidates(self, *, since: datetime, untouched_since: datetime) -> list[JobRecord]:
        """Jobs created after `since`, untouched since `untouched_since`, that are not terminal or not
        fully announced (no EventBridge event sent): what the sweeper looks at."""
        terminal = sorted(s.value for s in TERMINAL)
        values: dict[str, Any] = {":job": "job", ":since": iso(since), ":before": iso(untouched_since)}
        values.update({f":t{i}": status for i, status in enumerate(terminal)})
        kwargs: dict[str, Any] = {
            "IndexName": "by_created",
            "KeyConditionExpression": "#k = :job AND created_at >= :since",
            "FilterExpression": "updated_at < :before AND (attribute_not_exists(event_sent_at) "
            f"OR NOT #s IN ({', '.join(f':t{i}' for i in range(len(terminal)))}))",
            "ExpressionAttributeNames": {"#k": "kind", "#s": "status"},
            "ExpressionAttributeValues": values,
        }
        return self._query_all(kwargs)

    def unbound_creates(self, *, since: datetime) -> list[JobRecord]:
        """Jobs created after `since` that sent a create and have no task bound yet: the jobs that
        could own a provider task nobody owns. A rare path (a lost create), so a filtered query will do."""
        kwargs: dict[str, Any] = {
            "IndexName": "by_created",
            "KeyConditionExpression": "#k = :job AND created_at >= :since",
            "FilterExpression": "attribute_exists(create_sent_at) AND attribute_not_exists(task_id) "
            "AND #s = :accepted",
            "ExpressionAttributeNames": {"#k": "kind", "#s": "status"},
            "ExpressionAttributeValues": {
                ":job": "job",
                ":since": iso(since),
                ":accepted": JobStatus.ACCEPTED.value,
            },
        }
        return self._query_all(kwargs)

    def record_task(self, job_id: str, *, task_id: str, request_id: str | None, now: datetime) -> Write:
        """Bind the provider task to the job, once: done with the SUBMITTED job, or not done with the job
        as it stands when it already has a task (or ended) or the task already belongs to another job.

        Ownership is written first: a crash between the two writes leaves the task owned by this job,
        which reconciliation recognises as ours.
        """
        try:
            self._table.put_item(
                Item={"pk": f"task#{task_id}", "job_id": job_id, "created_at": iso(now)},
                ConditionExpression="attribute_not_exists(pk) OR job_id = :job",
                ExpressionAttributeValues={":job": job_id},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            # Another job's task (a rare race with its reconciliation): the job was not written, so
            # its state comes from a read.
            current = self.get(job_id)
            if current is None:
                raise PipelineError(f"job {job_id} not found") from None
            return Write(False, current)
        bound = self._update(
            job_id,
            UpdateExpression="SET task_id = :task, #s = :status, submitted_at = :now, updated_at = :now, "
            "history = list_append(if_not_exists(history, :empty), :h), "
            "request_ids = list_append(if_not_exists(request_ids, :empty), :rid)",
            ConditionExpression="attribute_not_exists(task_id) AND #s = :accepted",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":task": task_id,
                ":status": JobStatus.SUBMITTED.value,
                ":now": iso(now),
                ":h": [{"status": JobStatus.SUBMITTED.value, "at": iso(now)}],
                ":rid": [request_id] if request_id else [],
                ":empty": [],
                ":accepted": JobStatus.ACCEPTED.value,
            },
        )
        if bound.done:
            self._count_active(+1)
        return bound

    def release_task(self, job_id: str, *, task_id: str, now: datetime) -> bool:
        """Unbind a task shown not to be the job's (another client's), so that the job creates its own.

        The task is marked foreign first: a crash before the job is unbound leaves a job bound to a task
        nobody may adopt again, which the next check releases. The job goes back to ACCEPTED with no
        create claim. False when the job no longer holds that task.
        """
        try:
            self._table.put_item(
                Item={"pk": f"task#{task_id}", "job_id": FOREIGN, "by": job_id, "created_at": iso(now)},
                ConditionExpression="attribute_not_exists(pk) OR job_id IN (:job, :foreign)",
                ExpressionAttributeValues={":job": job_id, ":foreign": FOREIGN},
            )
            self._table.update_item(
                Key={"pk": job_id},
                UpdateExpression="SET #s = :accepted, updated_at = :now, released_tasks = "
                "list_append(if_not_exists(released_tasks, :empty), :task), "
                "history = list_append(if_not_exists(history, :empty), :h) "
                "REMOVE task_id, create_claimed_at, create_sent_at, create_ambiguous_at, adopted_unproven",
                ConditionExpression="task_id = :t AND NOT #s IN (:ok, :failed, :canceled, :timed_out)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":accepted": JobStatus.ACCEPTED.value,
                    ":now": iso(now),
                    ":task": [task_id],
                    ":t": task_id,
                    ":empty": [],
                    ":h": [{"status": JobStatus.ACCEPTED.value, "at": iso(now)}],
                    ":ok": JobStatus.SUCCEEDED.value,
                    ":failed": JobStatus.FAILED.value,
                    ":canceled": JobStatus.CANCELED.value,
                    ":timed_out": JobStatus.TIMED_OUT.value,
                },
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        self._count_active(-1)  # counted when the task was bound; the job's own task counts again
        return True

    def _count_active(self, delta: int) -> None:
        """The account-wide count of running jobs the poll schedule shares its budget among."""
        self._table.update_item(
            Key={"pk": ACTIVE_KEY}, UpdateExpression="ADD n :d", ExpressionAttributeValues={":d": delta}
        )

    def transition(
        self,
        job_id: str,
        new: JobStatus,
        *,
        now: datetime,
        fields: dict[str, Any] | None = None,
        expect: dict[str, str | None] | None = None,
    ) -> Write:
        """Move the job to `new` if the lifecycle allows it from its current status; set `fields`.

        `expect` makes the move conditional on what the caller checked: each attribute still holds the
        value seen (None: still absent). Not done (and nothing changed) when the move is not allowed,
        e.g. the job already ended or an expected attribute changed meanwhile.
        """
        allowed = statuses_that_may_move_to(new)
        names = {"#s": "status"}
        values: dict[str, Any] = {
            ":new": new.value,
            ":now": iso(now),
            ":h": [{"status": new.value, "at": iso(now)}],
            ":empty": [],
        }
        sets = ["#s = :new", "updated_at = :now", "history = list_append(if_not_exists(history, :empty), :h)"]
        if new in TERMINAL:
            sets.append("finished_at = :now")
        for i, (key, value) in enumerate((fields or {}).items()):
            names[f"#f{i}"] = key
            values[f":f{i}"] = value
            sets.append(f"#f{i} = :f{i}")
        placeholders = []
        for i, status in enumerate(allowed):
            values[f":a{i}"] = status.value
            placeholders.append(f":a{i}")
        conditions = ["attribute_exists(pk)", f"#s IN ({', '.join(placeholders)})"]
        for i, (key, seen) in enumerate((expect or {}).items()):
            names[f"#e{i}"] = key
            if seen is None:
                conditions.append(f"attribute_not_exists(#e{i})")
            else:
                values[f":e{i}"] = seen
                conditions.append(f"#e{i} = :e{i}")
        moved = self._update(
            job_id,
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=_dynamo(values),
        )
        if moved.done and new in TERMINAL and moved.job.task_id:
            self._count_active(-1)  # counted when the task was bound; every terminal move happens once
        return moved

    def update_fields(self, job_id: str, fields: dict[str, Any], *, now: datetime) -> JobRecord:
        """Set informational fields (polls, usage, request ids) without touching the status."""
        names = {f"#f{i}": key for i, key in enumerate(fields)}
        values = {f":f{i}": value for i, value in enumerate(fields.values())}
        values[":now"] = iso(now)
        sets = [f"#f{i} = :f{i}" for i in range(len(fields))] + ["updated_at = :now"]
        updated = self._update(
            job_id,
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=_dynamo(values),
        )
        return updated.job

    # -- push completion (see t2v.push: each write returns what the other side wrote) ---------
    def record_hint(self, job_id: str, *, event_id: str, now: datetime) -> HintRecorded:
        """Record a task-finished push on the job, once per event id; returns the parked token."""
        try:
            item = self._table.update_item(
                Key={"pk": job_id},
                UpdateExpression="SET hint_at = :now ADD push_events :ids, pushes :one",
                ConditionExpression="attribute_exists(pk) AND NOT contains(push_events, :id)",
                ExpressionAttributeValues={":now": iso(now), ":ids": {event_id}, ":id": event_id, ":one": 1},
                ReturnValues="ALL_NEW",
            ).get("Attributes", {})
        except ClientError as exc:
            if is_conditional_failure(exc):
                return HintRecorded(duplicate=True, finished=False, token=None)
            raise
        token = item.get("wait_token")
        return HintRecorded(
            duplicate=False,
            finished=str(item.get("status")) in _TERMINAL_VALUES,
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
        return Parked(hint_pending=pending, finished=str(item.get("status")) in _TERMINAL_VALUES)

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
            current = _refusing_item(exc) if is_conditional_failure(exc) else None
            if current is None:
                if is_conditional_failure(exc):
                    raise PipelineError(f"job {job_id} not found") from None
                raise
            return Write(False, _record(current))
        return Write(True, _record(item))

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
            current = self.get(job_id)
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

    def remember_idempotency_key(self, key: str, job_id: str, *, now: datetime) -> str:
        """Bind an API Idempotency-Key to a job id; returns the job id bound first."""
        try:
            self._table.put_item(
                Item={
                    "pk": f"idem#{key}",
                    "job_id": job_id,
                    "created_at": iso(now),
                    "expires_at": int(now.timestamp()) + 86400,
                },
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            existing = _refusing_item(exc) if is_conditional_failure(exc) else None
            if existing is None:
                raise
            return str(existing["job_id"])
        return job_id
