"""Provider capacity in the jobs table (`t2v.capacity` holds the rules):

- `capacity#account`: `leases` (job id -> when admitted), `held` (their number), the learned cap
  (`cap`, `ceiling`, `streak`, `probes`, `raised`, `doubt`), `queued` (owner -> queued jobs) and `last_owner` (whose turn was last);
- on a queued job's item: `queue_owner` and `queue_key`, the keys of the sparse index `by_queue`
  (only queued jobs are in it), removed when the job is admitted or leaves the queue; `lease_at` once
  admitted.

Every move that touches both the job and the capacity item is one `TransactWriteItems`, so a crash
never leaves a lease without its job's mark or a queue count without its entry; releasing a lease is
one conditional update, so it happens exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from t2v.adapters.jobs_table import TERMINAL_VALUES, JobsTable, plain
from t2v.capacity import QueuePlace, WorkingCap, next_owner
from t2v.times import iso

CAPACITY_KEY: Final = "capacity#account"
QUEUE_INDEX: Final = "by_queue"
NO_OWNER: Final = "-"  # the queue's name for jobs without an owner
# Enough tries to pass a few entries another admitter took first (the index lags the table a little).
_ADMIT_TRIES: Final = 8
# Pages a place in line reads at most (a user's read, never the workflow's).
_POSITION_PAGES: Final = 20


@dataclass(frozen=True)
class CapacityState:
    working: WorkingCap
    held: int
    leases: dict[str, str]
    queued: dict[str, int]
    last_owner: str | None

    @property
    def free(self) -> int:
        return max(0, self.working.cap - self.held)


def _owner(owner: str | None) -> str:
    return owner or NO_OWNER


def _cancelled(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code", "") in {
        "TransactionCanceledException",
        "ConditionalCheckFailedException",
    }


class CapacityLeases(JobsTable):
    """The capacity governor's store: leases, the queue and the learned cap."""

    def __init__(self, *args: Any, ceiling: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ceiling = ceiling

    # -- reading ------------------------------------------------------------------------------

    def state(self) -> CapacityState:
        """The capacity item as it stands; before the first job ever queued, an empty one (not written:
        only `enqueue` makes it, so the functions that merely free capacity need no PutItem)."""
        item = self._table.get_item(Key={"pk": CAPACITY_KEY}, ConsistentRead=True).get("Item")
        data: dict[str, Any] = (
            plain(item) if item is not None else {"held": 0, "cap": self._ceiling, "streak": 0}
        )
        working = WorkingCap(
            ceiling=int(data.get("ceiling", self._ceiling)),
            cap=int(data["cap"]),
            streak=int(data["streak"]),
            probes=int(data.get("probes", 0)),  # items made before the backoff have neither
            raised=bool(data.get("raised", False)),
            doubt=bool(data.get("doubt", False)),
        )
        if working.ceiling != self._ceiling:  # the parameter changed since the item was made
            working = working.with_ceiling(self._ceiling)
        return CapacityState(
            working=working,
            held=int(data["held"]),
            leases={str(k): str(v) for k, v in dict(data.get("leases") or {}).items()},
            queued={str(k): int(v) for k, v in dict(data.get("queued") or {}).items()},
            last_owner=data.get("last_owner"),
        )

    def _create_item(self) -> None:
        """The capacity item, made once (a concurrent maker's item is as good)."""
        from t2v.adapters import is_conditional_failure

        try:
            self._table.put_item(
                Item={
                    "pk": CAPACITY_KEY,
                    "held": 0,
                    "cap": self._ceiling,
                    "ceiling": self._ceiling,
                    "streak": 0,
                    "leases": {},
                    "queued": {},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise

    def position(self, job_id: str, owner: str | None, key: str) -> int:
        """How many of the owner's queued jobs are ahead of this one (0: next in its owner's line)."""
        from boto3.dynamodb.conditions import Key

        ahead = 0
        kwargs: dict[str, Any] = {
            "IndexName": QUEUE_INDEX,
            "KeyConditionExpression": Key("queue_owner").eq(_owner(owner)) & Key("queue_key").lt(key),
            "Select": "COUNT",
        }
        for _ in range(_POSITION_PAGES):  # 1 MB of keys a page: tens of thousands of jobs ahead
            answer = self._table.query(**kwargs)
            ahead += int(answer.get("Count", 0))
            if "LastEvaluatedKey" not in answer:
                break
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return ahead

    def place(self, job_id: str, owner: str | None, key: str) -> QueuePlace:
        state = self.state()
        return QueuePlace(
            position=self.position(job_id, owner, key),
            owner=_owner(owner),
            queued=state.queued,
            cap=state.working.cap,
            held=state.held,
        )

    # -- the queue ----------------------------------------------------------------------------

    def enqueue(self, job_id: str, *, owner: str | None, key: str, now: datetime) -> bool:
        """Put a job (not ended, not admitted, not queued) in its owner's queue; False when it was not."""
        if self._table.get_item(Key={"pk": CAPACITY_KEY}, ProjectionExpression="pk").get("Item") is None:
            self._create_item()  # the capacity item exists before a transaction updates it
        who = _owner(owner)
        return self._transact(
            self._item_update(
                job_id,
                "SET queue_owner = :o, queue_key = :k, queued_at = if_not_exists(queued_at, :now), "
                "updated_at = :now",
                condition="attribute_exists(pk) AND attribute_not_exists(queue_owner) "
                "AND attribute_not_exists(lease_at) AND NOT #s IN (:t0, :t1, :t2, :t3)",
                names={"#s": "status"},
                values={":o": who, ":k": key, ":now": iso(now), **_terminal_values()},
            ),
            self._item_update(
                CAPACITY_KEY,
                "SET queued.#o = if_not_exists(queued.#o, :zero) + :one",
                names={"#o": who},
                values={":zero": 0, ":one": 1},
            ),
        )

    def dequeue(self, job_id: str, *, owner: str | None) -> bool:
        """Take a job out of the queue without a lease (it ended: canceled, timed out); once."""
        who = _owner(owner)
        return self._transact(
            self._item_update(
                job_id, "REMOVE queue_owner, queue_key", condition="queue_owner = :o", values={":o": who}
            ),
            self._item_update(
                CAPACITY_KEY, "SET queued.#o = queued.#o - :one", names={"#o": who}, values={":one": 1}
            ),
        )

    def admit(self, *, now: datetime, deadline_seconds: int) -> list[str]:
        """Give free capacity to queued jobs, round-robin between owners: the job ids admitted now.
        Each admission sets the job's `lease_at` and its deadline, counted from now."""
        admitted: list[str] = []
        tried: set[str] = set()
        for _ in range(_ADMIT_TRIES + self._ceiling):
            state = self.state()
            if state.free <= 0:
                break
            queued = {o: n for o, n in state.queued.items() if o not in tried}
            owner = next_owner(queued, state.last_owner)
            if owner is None:
                break
            entry = self._head(owner)
            if entry is None:  # counted but not yet visible in the index (or counted wrong): next owner
                tried.add(owner)
                continue
            if self._grant(entry, owner, state, now=now, deadline_seconds=deadline_seconds):
                admitted.append(entry)
            elif self._ended(entry):
                # It ended while queued and the ender died before taking it out: heal the queue here.
                self.dequeue(entry, owner=None if owner == NO_OWNER else owner)
        return admitted

    def _ended(self, job_id: str) -> bool:
        item = self._table.get_item(Key={"pk": job_id}, ConsistentRead=True).get("Item")
        return item is None or str(item.get("status")) in TERMINAL_VALUES

    def lease_holders(self) -> list[str]:
        return sorted(self.state().leases)

    def wait_token(self, job_id: str) -> str | None:
        """The task token of the job's parked wait, read after its admission (see t2v.push)."""
        item = self._table.get_item(
            Key={"pk": job_id}, ConsistentRead=True, ProjectionExpression="wait_token"
        ).get("Item")
        token = (item or {}).get("wait_token")
        return str(token) if token else None

    def _head(self, owner: str) -> str | None:
        from boto3.dynamodb.conditions import Key

        answer = self._table.query(
            IndexName=QUEUE_INDEX,
            KeyConditionExpression=Key("queue_owner").eq(owner),
            ScanIndexForward=True,
            Limit=1,
        )
        items = answer.get("Items") or []
        return str(items[0]["pk"]) if items else None

    def _grant(
        self, job_id: str, owner: str, state: CapacityState, *, now: datetime, deadline_seconds: int
    ) -> bool:
        deadline = now + timedelta(seconds=deadline_seconds)
        return self._transact(
            self._item_update(
                CAPACITY_KEY,
                "SET held = held + :one, leases.#j = :now, queued.#o = queued.#o - :one, last_owner = :o",
                condition="held < :cap AND attribute_not_exists(leases.#j)",
                names={"#j": job_id, "#o": owner},
                values={":one": 1, ":now": iso(now), ":o": owner, ":cap": state.working.cap},
            ),
            self._item_update(
                job_id,
                "REMOVE queue_owner, queue_key SET lease_at = :now, deadline_at = :deadline, updated_at = :now",
                condition="queue_owner = :o AND NOT #s IN (:t0, :t1, :t2, :t3)",
                names={"#s": "status"},
                values={":o": owner, ":now": iso(now), ":deadline": iso(deadline), **_terminal_values()},
            ),
        )

    # -- leases -------------------------------------------------------------------------------

    def release(self, job_id: str) -> bool:
        """Give the job's lease back (its task ended, or it vanished); exactly once."""
        from t2v.adapters import is_conditional_failure

        try:
            self._table.update_item(
                Key={"pk": CAPACITY_KEY},
                UpdateExpression="REMOVE leases.#j SET held = held - :one",
                ConditionExpression="attribute_exists(leases.#j)",
                ExpressionAttributeNames={"#j": job_id},
                ExpressionAttributeValues={":one": 1},
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    def refused(self, job_id: str, *, owner: str | None, key: str, now: datetime) -> bool:
        """The provider refused the job's create for capacity: give its lease back, put it at the front
        of its owner's queue (its first key) and lower the cap to what else was in flight. Once."""
        state = self.state()
        lowered = state.working.refused(in_flight=state.held - 1)
        who = _owner(owner)
        return self._transact(
            self._item_update(
                CAPACITY_KEY,
                "REMOVE leases.#j SET held = held - :one, cap = :cap, streak = :zero, probes = :probes, "
                "raised = :no, doubt = :doubt, queued.#o = if_not_exists(queued.#o, :zero) + :one",
                condition="attribute_exists(leases.#j)",
                names={"#j": job_id, "#o": who},
                values={
                    ":one": 1,
                    ":zero": 0,
                    ":cap": lowered.cap,
                    ":probes": lowered.probes,
                    ":no": False,
                    ":doubt": lowered.doubt,
                },
            ),
            self._item_update(
                job_id,
                "SET queue_owner = :o, queue_key = :k, updated_at = :now REMOVE lease_at",
                values={":o": who, ":k": key, ":now": iso(now)},
            ),
        )

    def accepted(self) -> WorkingCap:
        """A create was accepted: the cap learns (an optimistic write; a lost race skips one step)."""
        return self._learn(lambda working: working.accepted())

    def held_too_long(self) -> WorkingCap:
        return self._learn(lambda working: working.held_too_long())

    def _learn(self, step: Any) -> WorkingCap:
        from t2v.adapters import is_conditional_failure

        state = self.state()
        learned: WorkingCap = step(state.working)
        try:
            self._table.update_item(
                Key={"pk": CAPACITY_KEY},
                UpdateExpression="SET cap = :cap, streak = :streak, ceiling = :ceiling, probes = :probes, "
                "raised = :raised, doubt = :doubt",
                ConditionExpression="cap = :seen AND streak = :seen_streak",
                ExpressionAttributeValues={
                    ":cap": learned.cap,
                    ":streak": learned.streak,
                    ":ceiling": learned.ceiling,
                    ":probes": learned.probes,
                    ":raised": learned.raised,
                    ":doubt": learned.doubt,
                    ":seen": state.working.cap,
                    ":seen_streak": state.working.streak,
                },
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
            return state.working
        return learned

    def reclaim(self, holders: dict[str, str | None]) -> list[str]:
        """The sweeper's part: give back every lease whose job ended or vanished (`holders`: job id ->
        its status, None when the job is gone)."""
        return [
            job_id
            for job_id, status in holders.items()
            if (status is None or status in TERMINAL_VALUES) and self.release(job_id)
        ]

    def _item_update(
        self,
        pk: str,
        expression: str,
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One item's update within a transaction (plain values: the resource client types them)."""
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": pk},
            "UpdateExpression": expression,
        }
        if condition:
            update["ConditionExpression"] = condition
        if names:
            update["ExpressionAttributeNames"] = names
        if values:
            update["ExpressionAttributeValues"] = values
        return {"Update": update}

    def _transact(self, *items: dict[str, Any]) -> bool:
        """The updates as one TransactWriteItems: False when a condition refused them (nothing written)."""
        try:
            self._table.meta.client.transact_write_items(TransactItems=list(items))  # type: ignore[arg-type]
        except ClientError as exc:
            if _cancelled(exc):
                return False
            raise
        return True


def _terminal_values() -> dict[str, str]:
    return {f":t{i}": value for i, value in enumerate(sorted(TERMINAL_VALUES))}
