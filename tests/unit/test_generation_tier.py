"""Generation tiers: an unknown size raises, and every key today's records use keeps working.

Tiers are stored in two places: the `tier` of a `PollTurn` in flight (the state machine's input)
and the learned timings, one `stats#tier#<key>` item per tier (`t2v.adapters.poll_stats`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from t2v.adapters.poll_stats import PollStats
from t2v.contract import PollTurn
from t2v.errors import UnknownTierError
from t2v.families import parse_request, tier_of
from t2v.request import DURATIONS, SIZES, RefusedRequest
from t2v.schedule import DEFAULT_RUN_SECONDS, GenerationTier, TierHistory, default_history

from tests.conftest import load_event

T720 = GenerationTier(resolution="720P", seconds=5, audio=False)


class _Table:
    """The few DynamoDB table calls `PollStats` makes for tier histories, on a dict of items."""

    def __init__(self, items: dict[str, dict[str, Any]]) -> None:
        self.items = items

    def get_item(self, *, Key: dict[str, str], **_: Any) -> dict[str, Any]:
        item = self.items.get(Key["pk"])
        return {"Item": item} if item is not None else {}

    def put_item(self, *, Item: dict[str, Any], **_: Any) -> None:
        self.items[Item["pk"]] = Item


class _Resource:
    def __init__(self, table: _Table) -> None:
        self.table = table

    def Table(self, name: str) -> _Table:
        return self.table


@pytest.mark.parametrize("size", ["999*999", "", "1440*1440", "720P"])
def test_an_unknown_size_raises_a_typed_error_naming_it(size: str) -> None:
    with pytest.raises(UnknownTierError, match=re.escape(f"size '{size}'")) as raised:
        GenerationTier.of(size, 5, False)

    assert raised.value.key == size
    assert raised.value.code == "UnknownTier"


def test_a_stored_request_with_an_unknown_size_raises_too() -> None:
    with pytest.raises(UnknownTierError, match=r"1234\*5678"):
        tier_of({"prompt": "p", "size": "1234*5678", "duration": 5})


def test_every_request_the_contract_accepts_has_a_tier_with_a_prior() -> None:
    # Given every size, duration and sound a request may have
    for size, spec in SIZES.items():
        for duration in DURATIONS[spec.tier]:
            for audio in (False, True):
                stored = parse_request({"prompt": "p", "size": size, "duration": duration, "audio": audio})
                # When its record's tier is taken
                tier = tier_of(stored.model_dump(exclude_none=True))
                # Then it is the size's resolution, and it has seeded timings until real ones are learned
                assert tier == GenerationTier(resolution=spec.tier, seconds=duration, audio=audio)
                assert default_history(tier).run


def test_the_tier_keys_of_stored_timings_are_unchanged() -> None:
    # The `stats#tier#<key>` items already in the table must still be found under these keys.
    assert GenerationTier.of("640*360", 5, False).key == "360P/5s/silent"
    assert GenerationTier.of("1024*576", 10, True).key == "540P/10s/audio"
    assert GenerationTier.of("1280*720", 8, False).key == "720P/8s/silent"
    assert GenerationTier.of("1920*1080", 8, True).key == "1080P/8s/audio"
    assert set(DEFAULT_RUN_SECONDS) == {spec.tier for spec in SIZES.values()}


def test_records_that_lack_a_size_keep_the_tier_they_had() -> None:
    # A refused request's record keeps only a digest; an early record may omit defaulted fields.
    assert tier_of(RefusedRequest.of("not json").model_dump()) == T720
    assert tier_of({"prompt": "p"}) == T720
    assert tier_of({"prompt": "p", "size": "640*360"}).key == "360P/5s/silent"


def test_a_turn_in_flight_keeps_its_tier() -> None:
    # Given a poll turn as the state machine holds it today
    turn = PollTurn.model_validate(load_event("status.json"))

    # Then its tier reads back, under the same key, and goes out unchanged
    assert turn.tier == T720
    assert turn.tier.key == "720P/5s/silent"
    assert turn.model_dump(mode="json")["tier"] == {"resolution": "720P", "seconds": 5, "audio": False}


def test_timings_learned_under_todays_key_are_read_and_extended() -> None:
    # Given timings a finished 1080P job left under today's key
    key = "stats#tier#1080P/8s/audio"
    table = _Table({key: {"pk": key, "queue": [Decimal("2.5")], "run": [Decimal("80")], "version": 1}})
    stats = PollStats("jobs", resource=_Resource(table))
    tier = tier_of({"prompt": "p", "size": "1920*1080", "duration": 8, "audio": True})

    # When a job of the same request reads them, and another finishes
    read = stats.history(tier)
    stats.record_timing(tier, queue=3.0, run=90.0, limit=32)

    # Then the stored timings are its history, and the new one is added to the same item
    assert read == TierHistory(queue=(2.5,), run=(80.0,))
    assert [float(v) for v in table.items[key]["run"]] == [80.0, 90.0]
    assert set(table.items) == {key}
