"""The pure batch domain (t2v.batches): reading a file into lines, refusing a file as a whole, what a
line became, how long a batch takes, and the shapes of its identity and its announcement."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from t2v.batches import (
    MOSTLY,
    SAMPLE_LINES,
    BatchFile,
    BatchRecord,
    BatchStatus,
    Line,
    batch_message,
    derive_batch_id,
    expected_seconds,
    line_job_id,
    lines_file,
    read_lines,
    result_line,
    too_long,
)
from t2v.jobs import JobRecord, JobStatus
from t2v.request import RefusedRequest

KEY = "prompts/batch.jsonl"
DEFAULTS = {"size": "1280*720", "duration": 5}
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def good(prompt: str = "a fox", **extra: Any) -> str:
    return json.dumps({"prompt": prompt, "size": "640*360", **extra})


def read(text: str | bytes, **kwargs: Any) -> Any:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return read_lines(KEY, data, DEFAULTS, **kwargs)


# -- reading a file ---------------------------------------------------------------------------------


def test_blank_lines_are_skipped_but_counted_in_the_numbering() -> None:
    result = read(f"\n{good('one')}\n   \n\n{good('two', duration=10)}\n\n")
    assert result.refusal is None
    assert [line.line for line in result.lines] == [2, 5]
    assert [line.request["prompt"] for line in result.lines if line.request] == ["one", "two"]
    assert [line.seconds for line in result.lines] == [5, 10]
    assert (result.valid, result.refused, result.video_seconds, result.last_line) == (2, 0, 15, 5)


def test_crlf_line_ends_are_read_as_line_ends() -> None:
    result = read(f"{good('one')}\r\n\r\n{good('two')}\r\n")
    assert result.refusal is None
    assert [(line.line, line.error) for line in result.lines] == [(1, None), (3, None)]
    assert [line.request["prompt"] for line in result.lines if line.request] == ["one", "two"]


def test_a_line_separator_inside_a_json_string_does_not_split_the_line() -> None:
    result = read(good("up\u2028down") + "\n" + good("ff\x0c"))
    assert result.refusal is None
    assert [line.request["prompt"] for line in result.lines if line.request] == ["up\u2028down", "ff\x0c"]


def test_the_stacks_defaults_fill_what_a_line_leaves_out() -> None:
    [line] = read('{"prompt": "bare"}').lines
    assert line.request is not None
    assert (line.request["size"], line.request["duration"], line.seconds) == ("1280*720", 5, 5)


def test_an_invalid_json_line_is_refused_with_file_line_and_reason_and_the_rest_are_read() -> None:
    result = read("\n".join([good("a"), '{"prompt": "b", "seed": NaN}', good("c"), "{not json"]))
    assert result.refusal is None
    assert [line.line for line in result.lines] == [1, 2, 3, 4]
    assert (result.valid, result.refused) == (2, 2)
    bad = {line.line: line for line in result.lines if line.request is None}
    assert bad[2].error is not None and bad[2].error.startswith(f"{KEY} line 2: invalid JSON")
    assert bad[4].error is not None and bad[4].error.startswith(f"{KEY} line 4: invalid JSON")
    assert (bad[2].seconds, bad[4].seconds) == (0, 0)
    assert result.video_seconds == 10


def test_a_refused_request_names_the_field_and_its_rule() -> None:
    result = read("\n".join([good("a"), good("b", seed=-1), good("c")]))
    [bad] = [line for line in result.lines if line.request is None]
    assert bad.line == 2 and bad.error is not None
    assert bad.error.startswith(f"{KEY} line 2: ") and "seed" in bad.error and "-1" in bad.error


def test_a_file_over_max_bytes_is_refused_as_a_whole_with_its_size_and_the_limit() -> None:
    data = (good("a") + "\n").encode() * 3
    result = read(data, max_bytes=len(data) - 1)
    assert result.lines == []
    assert result.refusal == f"{KEY}: the file is {len(data)} bytes, over the {len(data) - 1}-byte limit"
    assert read(data, max_bytes=len(data)).refusal is None  # at the limit: read


def test_a_file_not_utf8_is_refused_as_a_whole_naming_the_offset() -> None:
    result = read(good("a").encode() + b"\n\xff\xfe")
    offset = len(good("a")) + 1
    assert result.lines == []
    assert result.refusal == f"{KEY}: not UTF-8 text (invalid byte at offset {offset})"


def test_a_utf8_bom_is_not_part_of_the_first_line() -> None:
    result = read(b"\xef\xbb\xbf" + good("a").encode())
    assert result.refusal is None and result.valid == 1


@pytest.mark.parametrize("text", ["", "\n\n", "   \r\n\t\n"])
def test_an_empty_file_is_refused_as_a_whole(text: str) -> None:
    result = read(text)
    assert result.lines == [] and result.refusal == f"{KEY}: no requests in the file"


def test_a_file_over_max_lines_is_refused_as_a_whole_naming_the_limit() -> None:
    body = "\n".join(good(f"p{n}") for n in range(4))
    result = read(body, max_lines=3)
    assert result.lines == []
    assert result.refusal == f"{KEY}: more than 3 requests (a batch takes at most 3 lines)"
    at_limit = read(body + "\n\n\n", max_lines=4)  # blank lines are not requests
    assert at_limit.refusal is None and at_limit.valid == 4


def test_a_file_whose_first_lines_are_mostly_refused_is_refused_with_the_first_error() -> None:
    # 51 of the first 100 refused, then good lines: the sample decides
    lines = ["{bad" if n in range(2, 53) else good(f"p{n}") for n in range(1, 201)]
    result = read("\n".join(lines))
    assert result.refusal is not None
    assert result.refusal.startswith(f"{KEY}: 51 of the first {SAMPLE_LINES} lines are refused")
    assert result.refusal.endswith(
        f"the first: {KEY} line 2: invalid JSON: Expecting property name enclosed in double quotes"
    )
    assert len(result.lines) == 200  # what was read is kept (the numbers of the refused batch)


def test_exactly_half_of_the_first_lines_refused_is_not_refused_as_a_whole() -> None:
    assert MOSTLY == 0.5
    lines = ["{bad" if n % 2 == 0 else good(f"p{n}") for n in range(1, 101)]
    lines += ["{bad"] * 50  # after the sample: never counted towards a whole-file refusal
    result = read("\n".join(lines))
    assert result.refusal is None
    assert (result.valid, result.refused, len(result.lines)) == (50, 100, 150)


def test_a_short_file_mostly_refused_is_refused_and_half_is_not() -> None:
    assert read("{bad\n{bad\n" + good()).refusal is not None  # 2 of 3
    assert read("{bad\n" + good()).refusal is None  # 1 of 2


def test_the_lines_file_round_trips_every_line_in_order() -> None:
    result = read("\n".join([good("a", duration=10), "", '{"prompt": "b", "seed": NaN}', good("c\u2028")]))
    data = lines_file(result.lines)
    rows = [json.loads(text) for text in data.decode("utf-8").split("\n") if text]
    assert [row["line"] for row in rows] == [1, 3, 4]
    assert rows[0] == {"line": 1, "request": result.lines[0].request, "seconds": 10}
    raw = '{"prompt": "b", "seed": NaN}'
    assert rows[1] == {
        "line": 3,
        "error": result.lines[1].error,
        "refused": RefusedRequest.of(raw).model_dump(),
    }
    assert rows[1]["refused"]["prefix"] == raw  # what is kept of a refused line: never more than its prefix
    assert rows[2]["request"]["prompt"] == "c\u2028"
    assert data.count(b"\n") == 3  # one JSON object per line: U+2028 never breaks one
    back = [
        Line(r["line"], r.get("request"), r.get("error"), r.get("seconds", 0), r.get("refused")) for r in rows
    ]
    assert [b.item() for b in back] == [line.item() for line in result.lines]


# -- what became of one line ------------------------------------------------------------------------

VALID = Line(7, request={"prompt": "a", "size": "640*360", "duration": 5}, seconds=5)
REFUSED = Line(8, error=f"{KEY} line 8: invalid JSON: Expecting value")


def job(status: JobStatus, **fields: Any) -> JobRecord:
    return JobRecord.model_validate({"pk": "job-7", "status": status, **fields})


def test_a_succeeded_line_gives_its_video_and_billed_seconds() -> None:
    done = job(JobStatus.SUCCEEDED, s3_key="videos/job-7.mp4", billed_seconds=5, budget_day="2026-12-07")
    result = result_line(VALID, "job-7", done)
    assert result.as_dict() == {
        "line": 7,
        "job_id": "job-7",
        "status": "SUCCEEDED",
        "error": None,
        "video_key": "videos/job-7.mp4",
        "billed_seconds": 5,
    }


def test_a_refunded_line_bills_nothing_and_keeps_its_error() -> None:
    failed = job(
        JobStatus.FAILED,
        billed_seconds=5,
        refunded_at=NOW,
        error_code="ProviderFailed",
        error_message="it broke",
        s3_key="videos/never.mp4",
    )
    assert result_line(VALID, "job-7", failed).as_dict() == {
        "line": 7,
        "job_id": "job-7",
        "status": "FAILED",
        "error": {"code": "ProviderFailed", "message": "it broke"},
        "video_key": None,
        "billed_seconds": 0,
    }


def test_a_line_still_running_bills_nothing_yet() -> None:
    assert result_line(VALID, "job-7", job(JobStatus.RUNNING, billed_seconds=5)).billed_seconds == 0


def test_a_refused_line_without_a_record_gets_its_error() -> None:
    for canceled in (False, True):
        assert result_line(REFUSED, "job-8", None, canceled=canceled).as_dict() == {
            "line": 8,
            "job_id": None,
            "status": "FAILED",
            "error": {"code": "InvalidRequest", "message": REFUSED.error},
            "video_key": None,
            "billed_seconds": 0,
        }


def test_a_valid_line_without_a_record_in_a_canceled_batch_was_canceled() -> None:
    result = result_line(VALID, "job-7", None, canceled=True)
    assert (result.job_id, result.status, result.video_key, result.billed_seconds) == (
        None,
        "CANCELED",
        None,
        0,
    )
    assert result.error is not None and result.error["code"] == "BatchCanceled"


def test_a_valid_line_without_a_record_otherwise_was_never_started() -> None:
    result = result_line(VALID, "job-7", None)
    assert (result.job_id, result.status, result.billed_seconds) == (None, "FAILED", 0)
    assert result.error is not None and result.error["code"] == "LineNotStarted"


# -- how long a batch takes ---------------------------------------------------------------------------


def test_expected_seconds_spreads_the_lines_over_the_slots_but_never_under_the_longest() -> None:
    assert expected_seconds([], 4) == 0.0
    assert expected_seconds([100.0, 100.0, 100.0, 100.0], 2) == 200.0
    assert expected_seconds([100.0, 100.0, 100.0, 100.0], 4) == 100.0
    assert expected_seconds([1000.0, 10.0, 10.0], 10) == 1000.0
    assert expected_seconds([60.0, 60.0], 0) == 120.0  # no slot known: one at a time


def test_too_long_names_the_requests_the_hours_the_slots_and_the_limit() -> None:
    assert too_long(3600.0, valid=10, slots=2, limit=3600.0) is None
    message = too_long(10 * 3600 + 1, valid=120, slots=4, limit=7200.0)
    assert message == (
        "the batch's 120 requests would take about 11 h at 4 running at once (the provider's learned cap), "
        "over the 2 h a batch may take: split the file"
    )


# -- identity and announcement ----------------------------------------------------------------------


def test_the_batch_id_is_stable_and_distinct_per_version() -> None:
    one = derive_batch_id("bucket", KEY, "v1")
    assert one == derive_batch_id("bucket", KEY, "v1")
    assert one.startswith("batch-") and len(one) == len("batch-") + 32
    others = {
        derive_batch_id("bucket", KEY, "v2"),
        derive_batch_id("bucket", "prompts/other.jsonl", "v1"),
        derive_batch_id("other", KEY, "v1"),
        derive_batch_id("bucket", KEY, ""),
    }
    assert one not in others and len(others) == 4
    assert BatchFile("bucket", KEY, "v1").batch_id == one


def test_a_lines_job_id_is_the_one_intake_gave_it_before_batches() -> None:
    from t2v.jobs import derive_job_id

    file = BatchFile("bucket", KEY, "v1")
    assert (
        file.job_id(3) == line_job_id("bucket", KEY, "v1", 3) == derive_job_id("s3", "bucket", KEY, "v1", "3")
    )
    assert file.job_id(3) != file.job_id(4)


def test_the_batch_message_has_the_documented_shape() -> None:
    batch = BatchRecord(
        batch_id="batch-abc",
        status=BatchStatus.COMPLETED,
        owner="arn:aws:iam::123456789012:user/alice",
        source="api",
        file={"bucket": "b", "key": KEY, "version": "v1", "version_id": "v1"},
        total=3,
        valid=2,
        refused=1,
        video_seconds=10,
        counts={"SUCCEEDED": 1, "FAILED": 2, "CANCELED": 0, "TIMED_OUT": 0},
        results_bucket="b",
        results_key="results/batch-abc.jsonl",
        summary_key="results/batch-abc.summary.json",
        created_at=NOW,
        finished_at=datetime(2026, 12, 7, 13, 0, tzinfo=UTC),
    )
    assert batch_message(batch) == {
        "batch_id": "batch-abc",
        "notification_id": "batch-abc/COMPLETED",
        "status": "COMPLETED",
        "owner": "arn:aws:iam::123456789012:user/alice",
        "source": "api",
        "file": {"bucket": "b", "key": KEY, "version": "v1"},
        "lines": {"total": 3, "valid": 2, "refused": 1},
        "counts": {"SUCCEEDED": 1, "FAILED": 2, "CANCELED": 0, "TIMED_OUT": 0},
        "video_seconds": 10,
        "results": {
            "bucket": "b",
            "key": "results/batch-abc.jsonl",
            "summary_key": "results/batch-abc.summary.json",
        },
        "error": None,
        "created_at": "2026-12-07T12:00:00Z",
        "finished_at": "2026-12-07T13:00:00Z",
    }


def test_a_refused_batchs_message_carries_its_error_and_no_results() -> None:
    batch = BatchRecord(
        batch_id="batch-r",
        status=BatchStatus.REFUSED,
        file={"bucket": "b", "key": KEY, "version": "v1"},
        error_code="BatchRefused",
        error_message=f"{KEY}: no requests in the file",
        created_at=NOW,
    )
    message = batch_message(batch)
    assert message["notification_id"] == "batch-r/REFUSED" and message["results"] is None
    assert message["error"] == {"code": "BatchRefused", "message": f"{KEY}: no requests in the file"}
    assert message["finished_at"] is None and message["owner"] is None


def test_statuses_that_end_a_batch() -> None:
    assert {s for s in BatchStatus if s.is_terminal} == {
        BatchStatus.COMPLETED,
        BatchStatus.CANCELED,
        BatchStatus.REFUSED,
    }
