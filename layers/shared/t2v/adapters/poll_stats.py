"""DynamoDB adapter for what the poll schedule shares across executions (the jobs table, laid out in
`t2v.adapters.jobs_table`).

- `stats#active`        `n`: jobs with a provider task that have not ended (kept by `TaskOwners` and
                        `JobsRepository`)
- `stats#tier#<key>`    `queue`, `run`: a tier's recent queue and run seconds, newest last
- `slot#<epoch second>` `n`: queries booked in that second (expires after an hour)

Reads are eventually consistent and cached per container for a few seconds: a slightly stale
active count only shifts the spacing a little, and the slot ledger holds the hard limit anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from botocore.exceptions import ClientError

from t2v.adapters import DynamoTable, LazyTable, is_conditional_failure
from t2v.schedule import GenerationTier, TierHistory, default_history

ACTIVE_KEY: Final = "stats#active"
ACTIVE_CACHE_SECONDS: Final = 5.0
HISTORY_CACHE_SECONDS: Final = 60.0
SLOT_TTL_SECONDS: Final = 3600
HISTORY_WRITE_ATTEMPTS: Final = 3


class PollStats(DynamoTable):
    def __init__(
        self,
        table: str | LazyTable,
        *,
        resource: Any | None = None,
        default_scale: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(table, resource=resource)
        self._default_scale = default_scale
        self._monotonic = monotonic
        self._active: tuple[float, int] | None = None
        self._histories: dict[str, tuple[float, TierHistory]] = {}

    def active_jobs(self) -> int:
        now = self._monotonic()
        if self._active is None or now - self._active[0] > ACTIVE_CACHE_SECONDS:
            item = self._table.get_item(Key={"pk": ACTIVE_KEY}).get("Item") or {}
            self._active = (now, max(1, int(item.get("n", 0))))  # type: ignore[arg-type]
        return self._active[1]

    def history(self, tier: GenerationTier) -> TierHistory:
        now = self._monotonic()
        cached = self._histories.get(tier.key)
        if cached is None or now - cached[0] > HISTORY_CACHE_SECONDS:
            item = self._table.get_item(Key={"pk": f"stats#tier#{tier.key}"}).get("Item")
            history = _history_of(item) if item else default_history(tier, self._default_scale)
            self._histories[tier.key] = cached = (now, history)
        return cached[1]

    def record_timing(self, tier: GenerationTier, *, queue: float, run: float, limit: int) -> None:
        """Append one finished task's times to its tier (optimistic, versioned; best effort)."""
        for _ in range(HISTORY_WRITE_ATTEMPTS):
            item = self._table.get_item(Key={"pk": f"stats#tier#{tier.key}"}, ConsistentRead=True).get("Item")
            current = _history_of(item) if item else TierHistory()
            version = int(item.get("version", 0)) if item else 0  # type: ignore[arg-type]
            updated = current.add(queue=queue, run=run, limit=limit)
            try:
                self._table.put_item(
                    Item={
                        "pk": f"stats#tier#{tier.key}",
                        "queue": [Decimal(str(round(v, 3))) for v in updated.queue],
                        "run": [Decimal(str(round(v, 3))) for v in updated.run],
                        "version": version + 1,
                    },
                    ConditionExpression="attribute_not_exists(pk) OR version = :v",
                    ExpressionAttributeValues={":v": version},
                )
            except ClientError as exc:
                if is_conditional_failure(exc):
                    continue  # another finalize wrote first: re-read and try again
                raise
            self._histories.pop(tier.key, None)
            return

    def take(self, second: int, limit: int) -> bool:
        """Book one query in `second` unless `limit` are booked there already."""
        try:
            self._table.update_item(
                Key={"pk": f"slot#{second}"},
                UpdateExpression="ADD n :one SET expires_at = :exp",
                ConditionExpression="attribute_not_exists(n) OR n < :limit",
                ExpressionAttributeValues={":one": 1, ":limit": limit, ":exp": second + SLOT_TTL_SECONDS},
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    def release(self, second: int) -> None:
        """Give back a booked second nobody will query in (a push woke its job earlier)."""
        try:
            self._table.update_item(
                Key={"pk": f"slot#{second}"},
                UpdateExpression="ADD n :minus",
                ConditionExpression="n > :zero",
                ExpressionAttributeValues={":minus": -1, ":zero": 0},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise


def _history_of(item: dict[str, Any]) -> TierHistory:
    return TierHistory(
        queue=tuple(float(v) for v in item.get("queue") or ()),
        run=tuple(float(v) for v in item.get("run") or ()),
    )
