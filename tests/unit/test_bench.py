"""The benchmarks' pure parts: request classification, transition counting, pricing, parsing."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from t2v.media import looks_like_mp4
from t2v_bench import coldstart, cost, prices, stream
from t2v_bench.servers import FTYP, mp4_like


def environ(
    method: str, path: str, *, query: str = "", service: str = "", body: bytes = b"", **headers: str
) -> dict[str, Any]:
    auth = (
        f"AWS4-HMAC-SHA256 Credential=testing/20261123/us-east-1/{service}/aws4_request, X" if service else ""
    )
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_AUTHORIZATION": auth,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    env.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    return env


@pytest.mark.parametrize(
    ("method", "query", "path", "action"),
    [
        ("POST", "uploads", "/b/videos/j.mp4", "CreateMultipartUpload"),
        ("PUT", "partNumber=1&uploadId=u", "/b/videos/j.mp4", "UploadPart"),
        ("POST", "uploadId=u", "/b/videos/j.mp4", "CompleteMultipartUpload"),
        ("DELETE", "uploadId=u", "/b/videos/j.mp4", "AbortMultipartUpload"),
        ("PUT", "", "/b/videos/j.json", "PutObject"),
        ("GET", "", "/b/videos/j.json", "GetObject"),
        ("HEAD", "", "/b/videos/j.json", "HeadObject"),
    ],
)
def test_s3_requests_are_named_by_method_and_query(method: str, query: str, path: str, action: str) -> None:
    assert cost.classify(environ(method, path, query=query, service="s3")) == ("s3", action, "-")


def test_dynamodb_requests_carry_the_item_kind_and_leave_the_body_readable() -> None:
    body = json.dumps({"TableName": "t", "Key": {"pk": {"S": "task#abc"}}}).encode()
    env = environ("POST", "/", service="dynamodb", body=body, x_amz_target="DynamoDB_20120810.UpdateItem")

    assert cost.classify(env) == ("dynamodb", "UpdateItem", "task")
    assert env["wsgi.input"].read() == body  # moto still gets the request
    job = json.dumps({"Item": {"pk": {"S": "job-1"}}}).encode()
    assert (
        cost.classify(environ("POST", "/", service="dynamodb", body=job, x_amz_target="X.PutItem"))[2]
        == "job"
    )


def test_query_protocol_requests_are_named_by_their_action() -> None:
    env = environ("POST", "/", service="sns", body=b"Action=Publish&TopicArn=arn")
    assert cost.classify(env) == ("sns", "Publish", "-")


def _entered(state: str, kind: str = "Task") -> dict[str, Any]:
    return {"type": f"{kind}StateEntered", "stateEnteredEventDetails": {"name": state}}


def test_transitions_count_each_state_entered_and_each_retry() -> None:
    # Given a job whose Submit was retried once and which polled twice
    events = [
        {"type": "ExecutionStarted"},
        _entered("Stagger", "Wait"),
        _entered("Submit"),
        {"type": "TaskScheduled"},
        {"type": "TaskFailed"},
        {"type": "TaskScheduled"},
        *[
            e
            for _ in range(2)
            for e in (
                _entered("WaitForVideo", "Wait"),
                _entered("CheckStatus"),
                {"type": "TaskScheduled"},
                _entered("RouteByState", "Choice"),
            )
        ],
        _entered("Finalize"),
        {"type": "TaskScheduled"},
        _entered("Done", "Succeed"),
        {"type": "ExecutionSucceeded"},
    ]
    counted = cost.count_history(events)
    # Then: 10 states entered + 1 retry; 5 Lambda tasks; 2 polls
    assert counted["transitions"] == 11
    assert counted["retries"] == 1
    assert counted["lambda_tasks"] == 5
    assert counted["polls"] == 2
    assert counted["status"] == "ExecutionSucceeded"


def test_pricing_scales_one_job_to_a_thousand_videos() -> None:
    raw = {
        "executions": [{"transitions": 16, "polls": 4}] * 2,
        "invocations": [("StatusFunction", 99.2, False)] * 8 + [("FinalizeFunction", 1000.0, False)] * 2,
        "memory_mb": {"StatusFunction": 256, "FinalizeFunction": 512},
        "requests": [
            ("dynamodb", "UpdateItem", "job"),
            ("dynamodb", "UpdateItem", "task"),
            ("dynamodb", "GetItem", "job"),
            ("s3", "UploadPart", "-"),
            ("sns", "Publish", "-"),
        ],
        "log_bytes": {},
        "job_item_bytes": [1500, 1700],
    }
    priced = cost.price(raw)
    by = {c["component"]: c for c in priced["components"]}

    assert priced["transitions_per_job"]["median"] == 16
    assert by["Step Functions state transitions"]["usd_per_1000"] == pytest.approx(
        16 * 1000 * prices.SFN_TRANSITION
    )
    # 8 x 100 ms x 0.25 GB + 2 x 1 s x 0.5 GB = 1.2 GB-s for 2 jobs
    assert by["Lambda GB-s (arm64, as deployed)"]["per_job"] == pytest.approx(0.6)
    # a 2 KB job record written once (twice with its GSI) + one 1 KB task record, for 2 jobs
    assert by["DynamoDB write request units"]["per_job"] == pytest.approx((2 * 2 + 1) / 2)
    assert priced["usd_per_1000"] == pytest.approx(sum(c["usd_per_1000"] for c in priced["components"]))


def test_importtime_lines_are_parsed_with_their_depth() -> None:
    text = "import time: self [us] | cumulative | imported package\nimport time:       120 |       5120 |   t2v.config\nimport time:      2000 |      9000 | app\n"
    rows = coldstart.parse_importtime(text)
    assert [(r.name, r.depth, r.self_us, r.cumulative_us) for r in rows] == [
        ("t2v.config", 1, 120, 5120),
        ("app", 0, 2000, 9000),
    ]


def test_the_template_environment_of_a_handler_resolves_parameters_and_adds_lambdas_own() -> None:
    env = coldstart.template_env("finalize")
    assert env["POWERTOOLS_SERVICE_NAME"] == "t2v"
    assert env["VIDEO_HOST_ALLOWLIST"] == "media.pixverseai.cn,*.aliyuncs.com"
    assert env["OUTPUT_BUCKET"] == "t2v-123456789012-us-east-1-0a1b2c3d4e5f"  # from the stack id
    assert env["TOPIC_ARN"] == "bench-OutcomeTopic"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["LAMBDA_TASK_ROOT"].endswith("functions/finalize")


def test_the_generated_video_is_mp4_like() -> None:
    body = mp4_like(3000)
    assert len(body) == 3000 and body.startswith(FTYP) and looks_like_mp4(body[:8])


def test_stream_verdicts_hold_real_to_both_goals() -> None:
    def row(mode: str, speed: float, growth: float) -> dict[str, Any]:
        return {
            "size": "1GiB",
            "sink": "moto",
            "mode": mode,
            "mib_per_s": speed,
            "growth_mib": growth,
            "cpu_s_per_gib": 1.0,
        }

    ok = {
        "repeat": 1,
        "part_size_mib": 8,
        "results": [row("naive", 50, 2048), row("plain", 100, 20), row("real", 85, 22)],
    }
    slow = {**ok, "results": [row("naive", 50, 2048), row("plain", 100, 20), row("real", 70, 22)]}
    assert [v[-1] for v in stream.verdicts(ok)] == [True]
    assert [v[-1] for v in stream.verdicts(slow)] == [False]
    assert "1GiB" in stream.report(ok)
