"""Hostile input, without I/O: strict JSON text (NaN, Infinity, out-of-range numbers and deep nesting
are invalid), bounded refusals, and the continuation event intake hands the rest of a file on with."""

from __future__ import annotations

import json

import pytest
from t2v.families import parse_request
from t2v.intake import CONTINUATION_KEY, IntakeDeps, PromptFile, handle_continuation
from t2v.jsontext import MAX_DEPTH, loads
from t2v.request import MAX_PROMPT_CHARS, REFUSED_PREFIX_CHARS, InvalidRequestError, RefusedRequest

from tests.conftest import load_event


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"seed": NaN}', "NaN is not a JSON number"),
        ("[Infinity]", "Infinity is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ('{"duration": 1e999}', "out of range"),
        ("-1e400", "out of range"),
        ("1" * 5000, "too many digits"),
        ("[" * 100_000 + "]" * 100_000, f"nested more than {MAX_DEPTH} levels"),
    ],
)
def test_what_json_loads_takes_but_is_not_json_is_refused(text: str, reason: str) -> None:
    with pytest.raises(json.JSONDecodeError, match=reason):
        loads(text)


def test_nesting_up_to_32_levels_is_taken_and_33_refused() -> None:
    # DynamoDB refuses attributes nested more than 32 levels: the text is refused before that.
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    assert loads('{"a": ' * MAX_DEPTH + "1" + "}" * MAX_DEPTH) is not None
    for text in (
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        '{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1),
    ):
        with pytest.raises(json.JSONDecodeError, match="nested"):
            loads(text)


def test_ordinary_json_is_unchanged() -> None:
    assert loads('{"prompt": "月光", "duration": 5.0, "seed": 7, "audio": true, "x": null}') == {
        "prompt": "月光",
        "duration": 5.0,
        "seed": 7,
        "audio": True,
        "x": None,
    }


def test_a_refused_request_keeps_a_digest_a_size_and_a_prefix() -> None:
    text = "一只小猫" * 100_000
    refused = RefusedRequest.of(text)
    assert refused.bytes == len(text.encode())
    assert len(refused.prefix) == REFUSED_PREFIX_CHARS and text.startswith(refused.prefix)
    assert len(refused.sha256) == 64


@pytest.mark.parametrize(
    "raw",
    [
        {"prompt": "x", "size": "9" * 200_000},
        {"prompt": "x", "model": "m" * 200_000},
        {"prompt": "x", "k" * 200_000: 1},
        {"prompt": "p" * (MAX_PROMPT_CHARS * 100)},
    ],
)
def test_refusals_never_echo_a_long_value(raw: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        parse_request(raw)
    assert len(str(refused.value)) < 600
    assert all(len(e.field) <= 100 for e in refused.value.errors)


def _intake(opened: list[PromptFile]) -> IntakeDeps:
    def never(*_: object) -> bool:
        raise AssertionError("a continuation starts no job of its own")

    def open_batch(file: PromptFile) -> str:
        opened.append(file)
        return "batch-x"

    return IntakeDeps(
        starter=type("S", (), {"start": never})(),
        record=never,
        reject=never,
        read_object=never,
        defaults={},
        open_batch=open_batch,
    )


def test_a_continuation_event_of_an_earlier_release_opens_the_files_batch() -> None:
    # An update can find one in flight: the file's batch runs it (its lines keep their job ids).
    opened: list[PromptFile] = []
    report = handle_continuation(load_event("intake_continuation.json"), _intake(opened))
    assert [f.key for f in opened] == ["prompts/batch.jsonl"]
    assert report.batches == ["batch-x"]


@pytest.mark.parametrize("body", [{}, {"bucket": "b", "version": "v"}, "text", None])
def test_a_malformed_continuation_is_refused_naming_it(body: object) -> None:
    with pytest.raises(InvalidRequestError, match="continuation"):
        handle_continuation({CONTINUATION_KEY: body}, _intake([]))
