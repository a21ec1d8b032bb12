"""The batch cost arithmetic (issue 24): its states match the batch workflow's ASL, and its counts
and dollars follow from the workflow and the list prices."""

from __future__ import annotations

import json
import math

import pytest
from t2v_bench import batch_cost, prices
from t2v_bench.batch_cost import Assumptions, batch_transitions, chain_quantities, compare


def _states(states: dict[str, dict[str, object]]) -> set[str]:
    return set(states)


def test_the_arithmetic_counts_the_states_the_batch_workflow_has() -> None:
    # Given the batch workflow's definition
    definition = json.loads(batch_cost.BATCH_ASL.read_text())
    lines_map = definition["States"]["Lines"]
    child = lines_map["ItemProcessor"]
    inline = child["States"]["RunLines"]["ItemProcessor"]

    # Then the arithmetic's states are exactly those (a new state must be priced before this passes)
    assert _states(definition["States"]) == {
        "ReadFile",
        "Accepted",
        "Refused",
        "Lines",
        "Collect",
        "Collected",
        "WaitForLines",
        "Done",
    }
    assert _states(child["States"]) == {"RecordLines", "RunLines", "LinesNotRecorded"}
    assert _states(inline["States"]) == {"RunLine", "LineEnded"}
    assert child["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert inline["ProcessorConfig"]["Mode"] == "INLINE"
    assert batch_cost.LINES_PER_CHILD == lines_map["ItemBatcher"]["MaxItemsPerBatch"] == 10


def test_batch_transitions_for_100_lines() -> None:
    # 10 children: each start + RecordLines + RunLines; 100 RunLine; parent ReadFile, Accepted,
    # Lines, Collect, Collected, Done
    t = batch_transitions(lines=100, valid=100)
    assert t == {"children": 10, "parent": 6, "children_total": 130, "total": 136}


def test_batch_transitions_count_failed_lines_refused_lines_and_collect_loops() -> None:
    # 101 lines: 11 children; 3 refused (no RunLine), 2 caught (LineEnded); Collect looked 3 times
    t = batch_transitions(lines=101, valid=98, caught=2, collects=3)
    assert t["children"] == 11
    assert t["parent"] == 1 + 1 + 1 + 3 * 2 + 2 + 1
    assert t["children_total"] == 11 * 3 + 98 + 2
    # Retries are billed: a ReadFile retried once, two RecordLines retried
    assert batch_transitions(lines=100, valid=100, reads=2, records=12)["total"] == 136 + 1 + 2


@pytest.mark.parametrize(
    ("lines", "invocations", "gets"), [(250, 1, 1), (1000, 4, 4), (1001, 5, 5), (100_000, 400, 400)]
)
def test_the_chain_invokes_intake_once_per_250_lines_of_each_file(
    lines: int, invocations: int, gets: int
) -> None:
    q = chain_quantities(lines, Assumptions())
    assert q["lambda_requests"] == invocations
    assert q["s3_gets"] == gets
    assert q["sns"] == q["events"] == lines


def test_per_1000_lines_for_100000_lines() -> None:
    result = compare(100_000)
    rows = {r["component"]: r for r in result["rows"]}
    # Transitions: the video workflow's 7 a line in both; the batch workflow adds 130,006 / 100 per 1,000
    assert result["transitions_per_1000"]["chain"] == 7000
    assert result["transitions_per_1000"]["batch"] == pytest.approx(7000 + 130_006 / 100)
    assert rows["Step Functions state transitions"]["batch_usd_per_1000"] == pytest.approx(
        8300.06 * prices.SFN_TRANSITION
    )
    # Invocations: 3 video Lambdas a line; batch read + 10,000 RecordLines + collect; chain 400 intake
    assert result["invocations_per_1000"]["batch"] == pytest.approx(3000 + 10_002 / 100)
    assert result["invocations_per_1000"]["chain"] == pytest.approx(3000 + 4)
    # Announcements: one per batch against one SNS + one EventBridge per line
    assert rows["SNS publishes"]["batch_per_1000"] == pytest.approx(0.01)
    assert rows["SNS publishes"]["chain_per_1000"] == 1000
    assert rows["EventBridge events"]["chain_usd_per_1000"] == pytest.approx(1000 * prices.EVENTBRIDGE_EVENT)
    # The totals are the sums of their rows
    total = result["total_usd_per_1000"]
    assert total["batch"] == pytest.approx(sum(r["batch_usd_per_1000"] for r in result["rows"]))
    assert total["chain"] == pytest.approx(sum(r["chain_usd_per_1000"] for r in result["rows"]))
    # The batch costs more (its own transitions), by about 1.3 transitions a line
    assert total["batch"] - total["chain"] == pytest.approx(0.033, abs=0.005)


def test_batch_lambda_gb_seconds_are_the_batch_functions_at_1024_mb() -> None:
    a = Assumptions(
        read_ms_base=1000, read_ms_per_line=0.0, lines_ms=500, collect_ms_base=2000, collect_ms_per_line=0
    )
    q = batch_cost.batch_quantities(1000, a)
    assert q["lambda_requests"] == 1 + 100 + 1
    assert q["lambda_gb_s"] == pytest.approx(1.0 + 100 * 0.5 + 2.0)
    assert math.isclose(batch_cost.video_quantities(1, a)["lambda_gb_s"], 0.6 / 4 + 0.35 / 4 + 2.5 / 2)


def test_the_prices_used_are_the_list_prices() -> None:
    assert math.isclose(prices.SNS_PUBLISH, 0.50e-6)
    assert math.isclose(prices.EVENTBRIDGE_EVENT, 1.00e-6)
    assert math.isclose(prices.S3_GET_CLASS, 0.0004 / 1000)
    assert math.isclose(prices.S3_PUT_CLASS, 0.005 / 1000)
    assert math.isclose(prices.DDB_WRU, 0.625e-6)
    assert math.isclose(prices.DDB_RRU, 0.125e-6)
    assert math.isclose(prices.SFN_TRANSITION, 0.025 / 1000)
