"""The job items of the jobs table (`t2v.adapters.jobs_table` lays the table out): a job's record, its
lifecycle moves, its create claim, and the queries that list and sweep jobs.

A terminal move of a job with a task takes it off `stats#active` (`TaskOwners.record_task` put it on).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from t2v.adapters import is_conditional_failure
from t2v.adapters.jobs_table import JobsTable, job_record, plain, to_dynamo
from t2v.errors import BatchCanceledError, InvalidCursorError, PipelineError
from t2v.jobs import TERMINAL, JobRecord, JobStatus, Write, owner_status_key, statuses_that_may_move_to
from t2v.listing import JobListing, JobsRead, Order, search_text
from t2v.times import iso, utcnow

JOB_TTL_DAYS = 90

# A cursor is DynamoDB's LastEvaluatedKey of the index a listing reads: the table's key and the index's.
_CURSOR_KEYS = frozenset({"pk", "kind", "created_at"})  # a start key of GSI by_created (every job)
_OWNER_CURSOR_KEYS = frozenset({"pk", "owner", "created_at"})  # a start key of GSI by_owner (one caller's)
_STATUS_CURSOR_KEYS = frozenset(
    {"pk", "owner_status", "created_at"}
)  # GSI by_owner_status (ended, by status)
NOT_A_CURSOR = "not a cursor this API returned (use next_cursor as is)"
# `stats#owner_status`: how far the sweeper has written owner_status onto jobs that ended before it was
# kept (`cursor`), and whether that is done (`done`): until then, listings by status filter by_owner.
BACKFILL_KEY = "stats#owner_status"
BACKFILL_CACHE_SECONDS = 60.0
BACKFILL_READ = 500  # jobs examined per sweep


def encode_cursor(last_key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(plain(last_key)).encode()).decode()


def decode_cursor(cursor: str, *, owner: str | None = None, status_key: str | None = None) -> dict[str, str]:
    """The start key a cursor stands for; raises InvalidCursorError unless it has the exact shape of
    one `list_jobs` returned for the same listing (DynamoDB would refuse anything else, and that is no
    server error): every job's (`owner` None), or `owner`'s own, never another caller's; for an ended
    status of `owner`'s (`status_key`), either index's (a listing that began before the backfill was
    done reads on where it was)."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        key = None
    shapes = [_CURSOR_KEYS] if owner is None else [_OWNER_CURSOR_KEYS]
    if status_key is not None:
        shapes.append(_STATUS_CURSOR_KEYS)
    if (
        not isinstance(key, dict)
        or set(key) not in shapes
        or key.get("kind", "job") != "job"
        or key.get("owner", owner) != owner
        or key.get("owner_status", status_key) != status_key
        or not all(isinstance(v, str) and v for v in key.values())
    ):
        raise InvalidCursorError(NOT_A_CURSOR)
    return key


def _filters(listing: JobListing, names: dict[str, str], values: dict[str, Any], *, status: bool) -> str:
    """The status and the words, as a filter on what the index reads. A job recorded before jobs kept
    `prompt_lc` is searched in its prompt as written (case-sensitively)."""
    parts = []
    if status and listing.status is not None:
        names["#s"] = "status"
        values[":status"] = listing.status.value
        parts.append("#s = :status")
    if listing.words:
        names.update({"#r": "request", "#p": "prompt"})
    for i, word in enumerate(listing.words):
        values[f":w{i}"] = word
        parts.append(
            f"(contains(prompt_lc, :w{i}) OR (attribute_not_exists(prompt_lc) AND contains(#r.#p, :w{i})))"
        )
    return " AND ".join(parts)


class JobsRepository(JobsTable):
    _backfill_seen: tuple[float, bool] | None = None  # (monotonic time read, done) of the backfill marker

    # -- reads -------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        return self._read_job(job_id)

    def list_jobs(
        self,
        listing: JobListing | None = None,
        *,
        limit: int = 20,
        cursor: str | None = None,
        owner: str | None = None,
        read: int | None = None,
    ) -> JobsRead:
        """One read of a listing: `read` jobs examined (default `limit`), at most `limit` of them
        matching; only `owner`'s jobs when given (GSI `by_owner`), else every job (`by_created`).
        `cursor` is opaque to callers (base64 of DynamoDB's LastEvaluatedKey, or of the last job
        returned when more matched than `limit`)."""
        listing = listing or JobListing()
        status_key = owner_status_key(owner, listing.status) if listing.status is not None else None
        start = decode_cursor(cursor, owner=owner, status_key=status_key) if cursor else None
        by_status = status_key is not None and (
            "owner_status" in start if start is not None else self.owner_status_ready()
        )
        if by_status:  # an owner's ended jobs of one status: dense, no filter on the status
            index, hash_name, hash_value, keys = (
                "by_owner_status",
                "owner_status",
                status_key,
                _STATUS_CURSOR_KEYS,
            )
        elif owner is not None:
            index, hash_name, hash_value, keys = "by_owner", "owner", owner, _OWNER_CURSOR_KEYS
        else:
            index, hash_name, hash_value, keys = "by_created", "kind", "job", _CURSOR_KEYS
        names: dict[str, str] = {"#h": hash_name}
        values: dict[str, Any] = {":h": hash_value}
        condition = "#h = :h"
        first, last = listing.created_range()
        if first is not None and last is not None:
            condition += " AND created_at BETWEEN :first AND :last"
            values.update({":first": first, ":last": last})
        elif first is not None:
            condition += " AND created_at >= :first"
            values[":first"] = first
        elif last is not None:
            condition += " AND created_at <= :last"
            values[":last"] = last
        kwargs: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ScanIndexForward": listing.order == Order.OLDEST,
            "Limit": read or limit,
        }
        filters = _filters(listing, names, values, status=not by_status)
        if filters:
            kwargs["FilterExpression"] = filters
        kwargs.update(ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        try:
            page = self._table.query(**kwargs)
        except ClientError as exc:
            if cursor and exc.response.get("Error", {}).get("Code") == "ValidationException":
                raise InvalidCursorError(NOT_A_CURSOR) from None
            raise
        items = page.get("Items", [])
        last_key = page.get("LastEvaluatedKey")
        if len(items) > limit:  # more matched than wanted: read on right after the last one kept
            items = items[:limit]
            last_key = {key: items[-1][key] for key in keys}
        return JobsRead(
            [job_record(item) for item in items],
            encode_cursor(last_key) if last_key else None,
            int(page.get("ScannedCount", len(items))),
        )

    def owner_status_ready(self) -> bool:
        """Whether every ended job with an owner carries owner_status (the sweeper's backfill is done):
        read once a minute per container."""
        now = time.monotonic()
        if self._backfill_seen is None or now - self._backfill_seen[0] > BACKFILL_CACHE_SECONDS:
            item = self._table.get_item(Key={"pk": BACKFILL_KEY}).get("Item") or {}
            self._backfill_seen = (now, bool(item.get("done")))
        return self._backfill_seen[1]

    def backfill_owner_status(self, *, read: int = BACKFILL_READ) -> int:
        """Write owner_status onto up to `read` examined jobs that ended before it was kept, oldest
        first, from where the last call stopped; the number written (0 once done)."""
        marker = self._table.get_item(Key={"pk": BACKFILL_KEY}, ConsistentRead=True).get("Item") or {}
        if marker.get("done"):
            return 0
        terminal = sorted(s.value for s in TERMINAL)
        values: dict[str, Any] = {":job": "job", **{f":t{i}": v for i, v in enumerate(terminal)}}
        kwargs: dict[str, Any] = {
            "IndexName": "by_created",
            "KeyConditionExpression": "#k = :job",
            "FilterExpression": "attribute_exists(#o) AND attribute_not_exists(owner_status) "
            f"AND #s IN ({', '.join(f':t{i}' for i in range(len(terminal)))})",
            "ExpressionAttributeNames": {"#k": "kind", "#o": "owner", "#s": "status"},
            "ExpressionAttributeValues": values,
            "Limit": read,
        }
        if marker.get("cursor"):
            kwargs["ExclusiveStartKey"] = json.loads(str(marker["cursor"]))
        page = self._table.query(**kwargs)
        written = 0
        for item in page.get("Items", []):
            key = owner_status_key(str(item["owner"]), JobStatus(str(item["status"])))
            try:
                self._table.update_item(
                    Key={"pk": item["pk"]},
                    UpdateExpression="SET owner_status = :key",
                    ConditionExpression="attribute_not_exists(owner_status)",
                    ExpressionAttributeValues={":key": key},
                )
                written += 1
            except ClientError as exc:
                if not is_conditional_failure(exc):
                    raise
        last = page.get("LastEvaluatedKey")
        self._table.update_item(
            Key={"pk": BACKFILL_KEY},
            UpdateExpression="SET #c = :c, #d = :d, updated_at = :now",
            ExpressionAttributeNames={"#c": "cursor", "#d": "done"},
            ExpressionAttributeValues={
                ":c": json.dumps(plain(last)) if last else "",
                ":d": last is None,
                ":now": iso(utcnow()),
            },
        )
        return written

    def _query_all(self, kwargs: dict[str, Any]) -> list[JobRecord]:
        """Every job a query matches, page after page."""
        jobs: list[JobRecord] = []
        while True:
            page = self._table.query(**kwargs)
            jobs.extend(job_record(item) for item in page.get("Items", []))
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
            "AND #s IN (:accepted, :waiting)",
            "ExpressionAttributeNames": {"#k": "kind", "#s": "status"},
            "ExpressionAttributeValues": {
                ":job": "job",
                ":since": iso(since),
                ":accepted": JobStatus.ACCEPTED.value,
                ":waiting": JobStatus.WAITING.value,  # queued for capacity: no task yet either
            },
        }
        return self._query_all(kwargs)

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
        extra: dict[str, Any] | None = None,
    ) -> tuple[JobRecord, bool]:
        """Insert the ACCEPTED job unless it exists. Returns the stored job and whether it was new.

        `extra`: fields a door sets at once (a batch line's batch, and the charge its batch reserved)."""
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
        item.update(extra or {})
        prompt = request.get("prompt")
        if isinstance(prompt, str):
            item["prompt_lc"] = search_text(prompt)  # what GET /videos?q= searches
        existing = self._put_new(to_dynamo(item))
        if existing is not None:
            return job_record(existing), False
        return job_record(item), True

    def claim_look(self, job_id: str, *, now: datetime, before: datetime) -> bool:
        """Take the right to look at the job's task now, unless someone looked since `before`."""
        try:
            self._table.update_item(
                Key={"pk": job_id},
                UpdateExpression="SET looked_at = :now",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(looked_at) OR looked_at <= :before)",
                ExpressionAttributeValues={":now": iso(now), ":before": iso(before)},
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    def claim_create(
        self, job_id: str, *, now: datetime, stale_before: datetime, batch_id: str | None = None
    ) -> Write:
        """Take the right to call the provider's create for this job.

        Succeeds when nobody holds a claim, or when the previous claim is older than `stale_before`
        (its holder crashed or its answer was lost; the caller must reconcile before creating).
        A batch line's claim is one transaction with its batch still RUNNING: once a batch's cancel is
        written no line of it creates a task (BatchCanceledError).
        """
        update: dict[str, Any] = {
            "UpdateExpression": "SET create_claimed_at = :now, updated_at = :now ADD create_attempts :one",
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(task_id) AND #s IN (:accepted, :waiting) "
            "AND (attribute_not_exists(create_claimed_at) OR create_claimed_at < :stale)",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {
                ":now": iso(now),
                ":one": 1,
                ":stale": iso(stale_before),
                ":accepted": JobStatus.ACCEPTED.value,
                ":waiting": JobStatus.WAITING.value,  # queued for capacity: no task yet either
            },
        }
        if batch_id is None:
            return self._update(job_id, **update)
        return self._claim_in_batch(job_id, batch_id, update)

    def _claim_in_batch(self, job_id: str, batch_id: str, update: dict[str, Any]) -> Write:
        from t2v.batches import BatchStatus, batch_key  # only batch lines need them

        client = self._table.meta.client
        items: list[dict[str, Any]] = [
            {"Update": {"TableName": self.table_name, "Key": {"pk": job_id}, **update}},
            {
                "ConditionCheck": {
                    "TableName": self.table_name,
                    "Key": {"pk": batch_key(batch_id)},
                    "ConditionExpression": "#s = :running",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":running": BatchStatus.RUNNING.value},
                }
            },
        ]
        try:
            client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = list(dict(exc.response).get("CancellationReasons") or [])  # type: ignore[call-overload]
            codes = [str(r.get("Code")) for r in reasons]
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise BatchCanceledError(
                    f"job {job_id}: its batch {batch_id} was canceled before its task was created"
                ) from None
            if codes and codes[0] == "ConditionalCheckFailed":
                current = self._read_job(job_id)
                if current is None:
                    raise PipelineError(f"job {job_id} not found") from None
                return Write(False, current)
            raise
        current = self._read_job(job_id)
        if current is None:
            raise PipelineError(f"job {job_id} not found")
        return Write(True, current)

    def release_claim(self, job_id: str) -> None:
        """The create surely did not reach the provider (refused or never sent): allow a new one."""
        self._table.update_item(
            Key={"pk": job_id},
            UpdateExpression="REMOVE create_claimed_at, create_sent_at",
            ConditionExpression="attribute_not_exists(task_id)",
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
            ExpressionAttributeValues=to_dynamo(values),
        )
        if moved.done and new in TERMINAL and moved.job.task_id:
            self._count_active(-1)  # counted when the task was bound; every terminal move happens once
        if new in TERMINAL and moved.job.status in TERMINAL and moved.job.batch_id:
            self._settle_batch_line(moved.job)  # also a retry of an end already written: counted once
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
            ExpressionAttributeValues=to_dynamo(values),
        )
        return updated.job
