"""The request model against every rule of the contract."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from t2v.families import parse_request
from t2v.request import DEFAULT_MODEL, DURATIONS, MAX_PROMPT_CHARS, MAX_SEED, SIZES, InvalidRequestError

TABLE = {
    "360P": ["640*360", "640*480", "640*640", "480*640", "360*640"],
    "540P": ["1024*576", "1024*768", "1024*1024", "768*1024", "576*1024"],
    "720P": ["1280*720", "1280*960", "1280*1280", "960*1280", "720*1280"],
    "1080P": ["1920*1080", "1920*1440", "1808*1808", "1440*1920", "1080*1920"],
}
ALL = [(tier, size) for tier, sizes in TABLE.items() for size in sizes]


def fields_of(exc: InvalidRequestError) -> set[str]:
    return {e.field for e in exc.errors}


def test_exactly_the_twenty_sizes_of_the_contract() -> None:
    assert sorted(SIZES) == sorted(size for _, size in ALL)
    assert len(SIZES) == 20


@pytest.mark.parametrize(("tier", "size"), ALL)
@pytest.mark.parametrize("duration", [5, 8, 10])
def test_duration_rule_per_size(tier: str, size: str, duration: int) -> None:
    allowed = tier != "1080P" or duration in (5, 8)
    if allowed:
        request = parse_request({"prompt": "p", "size": size, "duration": duration})
        assert request.tier == tier
        assert request.billed_seconds == duration
    else:
        with pytest.raises(InvalidRequestError) as err:
            parse_request({"prompt": "p", "size": size, "duration": duration})
        assert fields_of(err.value) == {"duration"}
        assert "1080P" in str(err.value) and "5, 8" in str(err.value)


@pytest.mark.parametrize("duration", [0, 4, 6, 7, 9, 11, -5, 5.5, True, "5s", "5", "10", None, [5]])
def test_other_durations_are_refused(duration: object) -> None:
    with pytest.raises(InvalidRequestError) as err:
        parse_request({"prompt": "p", "duration": duration})
    assert fields_of(err.value) == {"duration"}


def test_a_string_duration_is_refused_naming_the_json_type() -> None:
    with pytest.raises(InvalidRequestError) as err:
        parse_request({"prompt": "p", "duration": "5"})
    assert str(err.value) == "duration: duration must be a JSON integer number of seconds: 5, 8 or 10"
    assert parse_request({"prompt": "p", "duration": 8.0}).duration == 8  # the JSON number 8.0 is 8


def test_durations_table() -> None:
    assert DURATIONS == {"360P": (5, 8, 10), "540P": (5, 8, 10), "720P": (5, 8, 10), "1080P": (5, 8)}


@pytest.mark.parametrize("size", ["1280x720", "1280*721", "1920*1920", "", "720p", "1808*1808 "])
def test_unknown_sizes_are_refused_by_name(size: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        parse_request({"prompt": "p", "size": size})
    assert fields_of(err.value) == {"size"}
    assert "20 supported sizes" in str(err.value)


def test_output_resolution_quirk() -> None:
    assert parse_request({"prompt": "p", "size": "1808*1808", "duration": 8}).output_size == "1440*1440"
    assert parse_request({"prompt": "p", "size": "1808*1808", "duration": 5}).output_size == "1808*1808"
    assert parse_request({"prompt": "p", "size": "1920*1080", "duration": 8}).output_size == "1920*1080"


@pytest.mark.parametrize(
    ("seed", "ok"),
    [
        (0, True),
        (MAX_SEED, True),
        (-1, False),
        (MAX_SEED + 1, False),
        (None, True),
        ("1", False),
        (1.0, False),
        (True, False),
    ],
)
def test_seed_range(seed: object, ok: bool) -> None:
    if ok:
        assert parse_request({"prompt": "p", "seed": seed}).seed == seed
    else:
        with pytest.raises(InvalidRequestError) as err:
            parse_request({"prompt": "p", "seed": seed})
        assert fields_of(err.value) == {"seed"}


def test_prompt_limits_count_characters_not_bytes() -> None:
    assert parse_request({"prompt": "猫" * MAX_PROMPT_CHARS}).prompt == "猫" * MAX_PROMPT_CHARS
    with pytest.raises(InvalidRequestError) as err:
        parse_request({"prompt": "猫" * (MAX_PROMPT_CHARS + 1)})
    assert fields_of(err.value) == {"prompt"}
    assert "2049 characters" in str(err.value) and "truncate" in str(err.value)


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_empty_prompt_is_refused(prompt: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        parse_request({"prompt": prompt})
    assert fields_of(err.value) == {"prompt"}


def test_missing_prompt_and_unknown_fields_are_named() -> None:
    with pytest.raises(InvalidRequestError) as err:
        parse_request({"size": "1280*720", "resolution": "720P"})
    assert fields_of(err.value) == {"prompt", "resolution"}


def test_defaults_and_provider_body() -> None:
    request = parse_request({"prompt": "一只小猫在月光下奔跑"})
    assert (request.size, request.duration, request.audio, request.watermark, request.seed) == (
        "1280*720",
        5,
        False,
        False,
        None,
    )
    assert request.to_provider_body() == {
        "model": DEFAULT_MODEL,
        "input": {"prompt": "一只小猫在月光下奔跑"},
        "parameters": {"size": "1280*720", "duration": 5, "audio": False, "watermark": False},
    }
    body = parse_request({"prompt": "p", "seed": 12345, "audio": True}).to_provider_body()
    assert body["parameters"]["seed"] == 12345 and body["parameters"]["audio"] is True


@pytest.mark.parametrize("flag", ["audio", "watermark"])
@pytest.mark.parametrize("value", ["true", 1, 0, "yes", None])
def test_flags_must_be_booleans(flag: str, value: object) -> None:
    with pytest.raises(InvalidRequestError) as err:
        parse_request({"prompt": "p", flag: value})
    assert fields_of(err.value) == {flag}


def test_model_is_validated() -> None:
    with pytest.raises(InvalidRequestError) as err:
        parse_request({"prompt": "p", "model": "wan2.1-t2v"})
    assert fields_of(err.value) == {"model"}


@pytest.mark.parametrize("raw", [None, [], "prompt", 3])
def test_non_objects_are_refused(raw: object) -> None:
    with pytest.raises(InvalidRequestError) as err:
        parse_request(raw)
    assert fields_of(err.value) == {"request"}


@given(
    st.dictionaries(
        st.sampled_from(["prompt", "size", "duration", "audio", "watermark", "seed", "x"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30)),
    )
)
def test_any_input_gives_a_valid_request_or_named_errors(raw: dict[str, object]) -> None:
    try:
        request = parse_request(raw)
    except InvalidRequestError as exc:
        assert exc.errors and all(e.field and e.message for e in exc.errors)
    else:
        assert request.duration in DURATIONS[request.tier]
