"""The job items of the jobs table (`t2v.adapters.jobs_table` lays the table out): a job's record, its
lifecycle moves, its create claim, and the queries that list and sweep jobs.

A terminal move of a job with a task takes it off `stats#active` (`TaskOwners.record_task` put it on).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from t2v.adapters import is_conditional_failure
from t2v.adapters.jobs_table import JobsTable, job_record, plain, to_dynamo
from t2v.errors import InvalidCursorError
from t2v.jobs import TERMINAL, JobRecord, JobStatus, Write, statuses_that_may_move_to
from t2v.listing import JobListing, JobsRead, Order, search_text
from t2v.times import iso

JOB_TTL_DAYS = 90

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


def _filters(listing: JobListing, names: dict[str, str], values: dict[str, Any]) -> str:
    """The status and the words, as a filter on what the index reads. A job recorded before jobs kept
    `prompt_lc` is searched in its prompt as written (case-sensitively)."""
    parts = []
    if listing.status is not None:
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
        hash_name, hash_value = ("owner", owner) if owner is not None else ("kind", "job")
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
            "IndexName": "by_owner" if owner is not None else "by_created",
            "KeyConditionExpression": condition,
            "ScanIndexForward": listing.order == Order.OLDEST,
            "Limit": read or limit,
        }
        filters = _filters(listing, names, values)
        if filters:
            kwargs["FilterExpression"] = filters
        kwargs.update(ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        if cursor:
            kwargs["ExclusiveStartKey"] = decode_cursor(cursor, owner=owner)
        try:
            page = self._table.query(**kwargs)
        except ClientError as exc:
            if cursor and exc.response.get("Error", {}).get("Code") == "ValidationException":
                raise InvalidCursorError("not a cursor this API returned (use next_cursor as is)") from None
            raise
        items = page.get("Items", [])
        last_key = page.get("LastEvaluatedKey")
        if len(items) > limit:  # more matched than wanted: read on right after the last one kept
            items = items[:limit]
            index = _OWNER_CURSOR_KEYS if owner is not None else _CURSOR_KEYS
            last_key = {key: items[-1][key] for key in index}
        return JobsRead(
            [job_record(item) for item in items],
            encode_cursor(last_key) if last_key else None,
            int(page.get("ScannedCount", len(items))),
        )

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

    def claim_create(self, job_id: str, *, now: datetime, stale_before: datetime) -> Write:
        """Take the right to call the provider's create for this job.

        Succeeds when nobody holds a claim, or when the previous claim is older than `stale_before`
        (its holder crashed or its answer was lost; the caller must reconcile before creating).
        """
        return self._update(
            job_id,
            UpdateExpression="SET create_claimed_at = :now, updated_at = :now ADD create_attempts :one",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(task_id) AND #s IN (:accepted, :waiting) "
            "AND (attribute_not_exists(create_claimed_at) OR create_claimed_at < :stale)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":now": iso(now),
                ":one": 1,
                ":stale": iso(stale_before),
                ":accepted": JobStatus.ACCEPTED.value,
                ":waiting": JobStatus.WAITING.value,  # queued for capacity: no task yet either
            },
        )

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
