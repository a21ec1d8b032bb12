"""Property-based bad input: the request model, the prompt-file parser and the API body.

Whatever comes in, the answer is a valid request or a typed error that names the field (or the
file and line); never another exception, never a 500.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from t2v.families import parse_request
from t2v.intake import parse_prompt_file
from t2v.request import DURATIONS, SIZES, InvalidRequestError, VideoRequest

from tests.conftest import load_event
from tests.unit.test_api import call, post, world  # noqa: F401 - `world` is a fixture

DEFAULTS = {"size": "1280*720", "duration": 5}
FIELDS = set(VideoRequest.model_fields)
EXTENSIONS = ["a.txt", "a.json", "a.jsonl", "A.JSONL", "a.bin"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
valid_requests = st.builds(
    lambda size, prompt, audio, watermark, seed, pick: {
        "prompt": prompt,
        "size": size,
        "duration": DURATIONS[SIZES[size].tier][pick % len(DURATIONS[SIZES[size].tier])],
        "audio": audio,
        "watermark": watermark,
        **({"seed": seed} if seed is not None else {}),
    },
    st.sampled_from(sorted(SIZES)),
    st.text(min_size=1, max_size=60).filter(lambda p: p.strip() and "\ud800" not in p),
    st.booleans(),
    st.booleans(),
    st.none() | st.integers(0, 2_147_483_647),
    st.integers(0, 10),
)
# One field replaced by a value of the wrong kind or out of range: the error must name that field.
bad_values = {
    "prompt": st.sampled_from(["", "   ", "x" * 2049, "\ud800 lone surrogate", 5, None, ["a"]]),
    "size": st.sampled_from(["1280x720", "999*999", "", 1280, None, "1280*720 "]),
    "duration": st.sampled_from([0, 4, 6, 11, -5, 5.5, "5s", True, None, 10**30]),
    "audio": st.sampled_from(["true", 1, 0, None, "yes"]),
    "watermark": st.sampled_from(["false", 0, None, []]),
    "seed": st.sampled_from([-1, 2_147_483_648, 1.5, "7", True, 10**40]),
    "model": st.sampled_from(["pixverse/other", "", 3]),
}


def assert_named(exc: InvalidRequestError, raw: Any) -> None:
    assert exc.errors, "an InvalidRequestError must name at least one field"
    allowed = FIELDS | {"request"} | (set(map(str, raw)) if isinstance(raw, dict) else set())
    for error in exc.errors:
        assert error.field in allowed or error.field.split(".")[0] in allowed, error
        assert error.message


@given(json_values)
def test_any_json_value_is_a_request_or_names_its_fields(raw: Any) -> None:
    try:
        request = parse_request(raw, DEFAULTS)
    except InvalidRequestError as exc:
        assert_named(exc, raw)
    else:
        assert request.duration in DURATIONS[request.tier]


@given(valid_requests)
def test_valid_requests_round_trip(raw: dict[str, Any]) -> None:
    request = parse_request(raw)
    assert request.model_dump(exclude_none=True, exclude={"model"}) == raw


@given(valid_requests, st.sampled_from(sorted(bad_values)), st.data())
def test_one_bad_field_is_the_field_named(raw: dict[str, Any], field: str, data: st.DataObject) -> None:
    broken = {**raw, field: data.draw(bad_values[field])}
    with pytest.raises(InvalidRequestError) as err:
        parse_request(broken)
    assert [e.field for e in err.value.errors] == [field], err.value


@given(st.binary(max_size=2048), st.sampled_from(EXTENSIONS))
@example(b'{"prompt": "x", "seed": ' + b"1" * 5000 + b"}", "a.json")  # over Python's int digit limit
@example(b"[" * 100_000, "a.json")  # nesting deeper than the recursion limit
@example(b"[" * 100_000, "a.jsonl")
@example(b"\xef\xbb\xbf" + b'{"prompt": "bom"}\r\n', "a.jsonl")
def test_any_bytes_in_a_prompt_file_give_requests_or_errors_naming_the_file(data: bytes, key: str) -> None:
    items = parse_prompt_file(key, data, DEFAULTS)
    assert items
    for item in items:
        assert (item.request is None) == bool(item.error)
        if item.error:
            where = f"{key} line {item.line}" if item.line else key
            assert item.error.startswith(where), item.error


@given(st.lists(valid_requests | json_values, min_size=1, max_size=6), st.sampled_from(["\n", "\r\n"]))
def test_jsonl_lines_map_one_to_one_to_items(lines: list[Any], newline: str) -> None:
    # Written the way json.dumps writes them (raw U+2028 and U+0085 inside strings included)
    text = newline.join(json.dumps(line, ensure_ascii=False) for line in lines)

    items = parse_prompt_file("p.jsonl", text.encode(), DEFAULTS)

    assert [i.line for i in items] == list(range(1, len(lines) + 1))
    for item, line in zip(items, lines, strict=True):
        if isinstance(line, dict) and "prompt" in line and item.request is not None:
            assert item.request.prompt == line["prompt"]


def test_a_prompt_with_unicode_line_separators_survives_a_jsonl_file() -> None:
    line = json.dumps({"prompt": "月光\u2028下\x85奔跑\x0c", "size": "640*360"}, ensure_ascii=False)
    [item] = parse_prompt_file("p.jsonl", line.encode(), DEFAULTS)
    assert item.request is not None and item.request.prompt == "月光\u2028下\x85奔跑\x0c"


@pytest.mark.parametrize(
    "raw",
    [
        '{"prompt": "x", "seed": ' + "1" * 5000 + "}",
        "[" * 100_000,
        '{"prompt": "\\ud800"}',
        '{"prompt": "x", "duration": 1e400}',
    ],
)
def test_unreadable_api_bodies_are_400_naming_the_field(world: Any, raw: str) -> None:  # noqa: F811
    status, _, body = post(None, raw=raw)

    assert status == 400, body
    assert body["error"]["code"] == "InvalidRequest"
    assert {f["field"] for f in body["error"]["fields"]} <= {"body", "prompt", "duration"}


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "text/plain",
    ],
)
def test_non_json_bodies_are_415_naming_the_content_type(world: Any, content_type: str) -> None:  # noqa: F811
    event = load_event("api_post_videos.json")
    event["body"] = json.dumps({"prompt": "a fox"})
    for headers in (event["headers"], event["multiValueHeaders"]):
        for name in [n for n in headers if n.lower() == "content-type"]:
            headers.pop(name)
    event["headers"]["Content-Type"] = content_type
    event["multiValueHeaders"]["Content-Type"] = [content_type]

    status, _, body = call(event)

    assert (status, body["error"]["code"]) == (415, "UnsupportedMediaType")
    assert [f["field"] for f in body["error"]["fields"]] == ["Content-Type"]
    assert world.repo.items == {}  # nothing was recorded
