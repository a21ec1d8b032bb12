"""The account-wide poll stats in memory: the simulations' shared ledger, and the tests' fake of it.

The same interface as the `PollStats` adapter (`t2v.adapters.poll_stats`) behind the
`PollStatsLike` port; the benchmarks run the real schedule against it, and `tests/fakes.py` hands
it to the use cases. It lives here, not in the layer, so no production code can default to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from t2v.schedule import GenerationTier, TierHistory, default_history

if TYPE_CHECKING:
    from t2v.usecases.ports import PollStatsLike


class MemoryPollStats:
    """The poll schedule's shared stats in one process: active jobs, tier histories, the slot ledger."""

    def __init__(self, *, active: int = 1, default_scale: float = 1.0) -> None:
        self.active = active
        self.default_scale = default_scale
        self.histories: dict[GenerationTier, TierHistory] = {}
        self.slots: dict[int, int] = {}

    def active_jobs(self) -> int:
        return max(1, self.active)

    def history(self, tier: GenerationTier) -> TierHistory:
        return self.histories.get(tier) or default_history(tier, self.default_scale)

    def record_timing(self, tier: GenerationTier, *, queue: float, run: float, limit: int) -> None:
        self.histories[tier] = self.histories.get(tier, TierHistory()).add(queue=queue, run=run, limit=limit)

    def take(self, second: int, limit: int) -> bool:
        if self.slots.get(second, 0) >= limit:
            return False
        self.slots[second] = self.slots.get(second, 0) + 1
        return True

    def release(self, second: int) -> None:
        if self.slots.get(second, 0) > 0:
            self.slots[second] -= 1


if TYPE_CHECKING:
    # mypy checks the fake against the port: a method the port gains or changes fails here.
    _IS_THE_PORT: PollStatsLike = MemoryPollStats()
