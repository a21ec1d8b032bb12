"""Security end to end: the real template in its own sandbox, with a distinctive DashScope key.

- the key never leaks: after succeeding, provider-failing, refused and invalid-key (401) jobs, it
  is in no worker log line, DynamoDB item, S3 object, SNS message, EventBridge event, Step
  Functions history or API answer (nor are its obvious fragments);
- finalize refuses hostile video URLs (SSRF) and bad bodies: FAILED, nothing stored;
- the REST API refuses unsigned and badly signed requests on every route with 403 and JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from t2v_client import ApiClient, Target
from t2v_sandbox.user_sandbox import (
    Subscriber,
    UserSandbox,
    config_for,
    put_video_request,
    topic_arn,
    wait_until,
)

from tests.hostile_hosts import MP4_HEAD, Host, close_delimited, redirect, send

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(os.environ.get("T2V_E2E_TEMPLATE") or ROOT / "template.yaml")
JOB_TIMEOUT = 60.0
SMALL = {"size": "640*360", "duration": 5}
API_KEY = f"sk-{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"  # distinctive: found only if it leaked
FRAGMENTS = (API_KEY, API_KEY[:12], API_KEY[-12:], API_KEY.removeprefix("sk-"), f"Bearer {API_KEY[:8]}")
MAX_VIDEO_BYTES = 4 * 1024 * 1024
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"}


@pytest.fixture(scope="module")
def hostile() -> Iterator[Host]:
    host = Host({})
    host.routes.update(
        {
            "/to-metadata": redirect(lambda: "http://169.254.169.254/latest/meta-data/iam/"),
            "/to-private-https": redirect(lambda: "https://10.0.0.5/ok.mp4"),
            "/chain/0": redirect(lambda: "/chain/1"),
            **{f"/chain/{i}": redirect(lambda i=i: f"/chain/{i + 1}") for i in range(1, 7)},
            "/html": lambda h: send(h, 200, b"<html>login</html>", Content_Type="text/html"),
            "/huge": close_delimited(MP4_HEAD + b"\x00" * (MAX_VIDEO_BYTES + 1024 * 1024)),
        }
    )
    yield host
    host.close()


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory, hostile: Host) -> Iterator[UserSandbox]:
    if os.environ.get("DASHSCOPE_API_KEY"):
        pytest.skip("the e2e tier runs against the emulator only (unset DASHSCOPE_API_KEY)")
    config = config_for(
        TEMPLATE,
        work_dir=tmp_path_factory.mktemp("security-sandbox"),
        overrides={"PollIntervalSeconds": "1", "MaxVideoBytes": str(MAX_VIDEO_BYTES)},
        pending_seconds=0.3,
        running_seconds=0.6,
        write_endpoints=False,
    )
    config = dataclasses.replace(config, emulator_api_key=API_KEY, extra_video_origins=(hostile.origin,))
    with UserSandbox(config) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def outcomes(sb: UserSandbox) -> Subscriber:
    return Subscriber.attach(sb, topic_arn(sb), name="security-outcomes")


@pytest.fixture(scope="module")
def events_queue(sb: UserSandbox) -> str:
    """Every event on the stack's bus lands in this queue too (a rule with an SQS target)."""
    sqs = sb.client("sqs")
    url: str = sqs.create_queue(QueueName="security-all-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = sb.stack.parameters.get("EventBusName", "default") if sb.stack else "default"
    events = sb.client("events")
    events.put_rule(
        Name="security-all-events",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["t2v.pipeline", "security.tests"]}),
    )
    events.put_targets(Rule="security-all-events", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return url


@pytest.fixture(scope="module")
def api(sb: UserSandbox) -> Iterator[ApiClient]:
    creds = sb.session.get_credentials()
    target = Target(str(sb.endpoints["api_url"]), sb.config.region, creds.get_frozen_credentials())
    with ApiClient(target) as client:
        yield client


def set_faults(sb: UserSandbox, rules: list[dict[str, Any]]) -> None:
    sb.emulator.set_faults({"seed": 1, "rules": rules})


def put_request(sb: UserSandbox, detail: dict[str, Any]) -> str:
    from t2v.jobs import derive_job_id

    answer = put_video_request(sb, detail)
    assert answer["FailedEntryCount"] == 0, answer
    return derive_job_id("eventbridge", answer["Entries"][0]["EventId"])


def job(sb: UserSandbox, job_id: str) -> dict[str, Any] | None:
    table = sb.session.resource("dynamodb", endpoint_url=sb.moto_url).Table(sb.outputs["JobsTableName"])
    item: dict[str, Any] | None = table.get_item(Key={"pk": job_id}).get("Item")
    return item


def wait_terminal(sb: UserSandbox, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        found = job(sb, job_id)
        return found if found and found["status"] in TERMINAL else None

    return wait_until(ended, timeout=JOB_TIMEOUT, what=f"job {job_id} ending")


# --- everything the stack wrote, as text, by where it was found


def worker_logs(sb: UserSandbox) -> dict[str, str]:
    return {f"log {p.name}": p.read_text(errors="replace") for p in (sb.work_dir / "logs").glob("*.log")}


def table_items(sb: UserSandbox) -> dict[str, str]:
    table = sb.session.resource("dynamodb", endpoint_url=sb.moto_url).Table(sb.outputs["JobsTableName"])
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return {f"item {i['pk']}": json.dumps(i, default=str) for i in items}


def jobs_count(sb: UserSandbox) -> int:
    return sum('"kind": "job"' in item for item in table_items(sb).values())


def s3_objects(sb: UserSandbox) -> dict[str, str]:
    s3, bucket = sb.client("s3"), sb.outputs["OutputBucketName"]
    found: dict[str, str] = {}
    for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
        obj = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
        body = obj["Body"].read().decode("latin-1")  # bytes-exact, so an MP4 is searched too
        found[f"s3 {version['Key']}"] = json.dumps(obj.get("Metadata", {})) + body
    return found


def queued(sb: UserSandbox, queue_url: str) -> list[str]:
    sqs, bodies = sb.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def histories(sb: UserSandbox) -> dict[str, str]:
    sfn = sb.client("stepfunctions")
    found: dict[str, str] = {}
    for execution in sfn.list_executions(stateMachineArn=sb.outputs["StateMachineArn"])["executions"]:
        arn = execution["executionArn"]
        described = sfn.describe_execution(executionArn=arn)
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        found[f"execution {execution['name']}"] = json.dumps([described, events], default=str)
    return found


def leaks(corpus: dict[str, str]) -> list[str]:
    return [
        f"{where}: {fragment!r}"
        for where, text in corpus.items()
        for fragment in FRAGMENTS
        if fragment in text
    ]


def test_the_api_key_appears_nowhere_after_succeeding_failing_and_invalid_key_jobs(
    sb: UserSandbox, api: ApiClient, outcomes: Subscriber, events_queue: str
) -> None:
    # Given jobs that succeed (API and EventBridge), fail at the provider, are refused at create,
    # and one that meets a real 401 because the provider stops accepting the key
    tag = uuid.uuid4().hex[:6]
    set_faults(
        sb,
        [
            {"kind": "task_failed", "prompt_contains": f"fails-{tag}", "code": "InternalError.Algo"},
            {
                "endpoint": "create",
                "kind": "error",
                "prompt_contains": f"refused-{tag}",
                "code": "DataInspectionFailed",
            },
            {
                "endpoint": "query",
                "kind": "error",
                "prompt_contains": f"throttled-{tag}",
                "code": "Throttling",
                "times": 1,
            },
        ],
    )
    jobs = [
        api.submit({"prompt": f"api ok {tag}", **SMALL})["job_id"],
        put_request(sb, {"prompt": f"events ok throttled-{tag}", **SMALL}),
        put_request(sb, {"prompt": f"provider fails-{tag}", **SMALL}),
        put_request(sb, {"prompt": f"create refused-{tag}", **SMALL}),
        put_request(sb, {"prompt": "", **SMALL}),  # invalid: recorded FAILED without a provider call
    ]
    ended = {job_id: wait_terminal(sb, job_id)["status"] for job_id in jobs}
    assert list(ended.values()) == ["SUCCEEDED", "SUCCEEDED", "FAILED", "FAILED", "FAILED"], ended

    sb.emulator.config.api_keys = ("sk-only-another-key",)
    try:
        rejected = put_request(sb, {"prompt": f"invalid key {tag}", **SMALL})
        record = wait_terminal(sb, rejected)
    finally:
        sb.emulator.config.api_keys = None
    assert (record["status"], record["error_code"]) == ("FAILED", "InvalidApiKey"), record
    jobs.append(rejected)
    set_faults(sb, [])

    # When everything the stack wrote or said is gathered
    wait_until(lambda: all(outcomes.for_job(j) for j in jobs), timeout=JOB_TIMEOUT, what="six notifications")
    time.sleep(0.5)  # the completion events follow the notifications
    corpus = {
        **worker_logs(sb),
        **table_items(sb),
        **s3_objects(sb),
        **histories(sb),
        **{f"sns {i}": json.dumps(m) for i, m in enumerate(outcomes.received)},
        **{f"event {i}": body for i, body in enumerate(queued(sb, events_queue))},
        **{f"api GET {j}": json.dumps(api.call("GET", f"/videos/{j}").body) for j in jobs},
        "api list": json.dumps(api.list(limit=100)),
    }

    # Then each kind of record is there (the search is not vacuous), and the key is in none of them
    kinds = {where.split(" ")[0] for where in corpus}
    assert kinds >= {"log", "item", "s3", "execution", "sns", "event", "api"}, kinds
    assert any("InvalidApiKey" in text for where, text in corpus.items() if where.startswith("log"))
    assert any(j in text for j in jobs for where, text in corpus.items() if where.startswith("event"))
    used = {sb.emulator.task(t["task_id"]).api_key for t in sb.emulator.tasks() if tag in t["prompt"]}
    assert used == {API_KEY}  # the provider did get this very key
    assert leaks(corpus) == []


# --- SSRF through the whole stack


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        # The full matrix runs in tests/integration/test_finalize_guard.py; here, one of each kind.
        ("https://169.254.169.254/latest/meta-data/", "IP address"),
        ("/to-metadata", "https"),
        ("/to-private-https", "IP address"),
        ("/chain/0", "more than 5 redirects"),
        ("/html", "not an MP4"),
        ("/huge", "exceeds the cap"),
    ],
)
def test_hostile_video_urls_end_failed_with_nothing_stored(
    sb: UserSandbox, hostile: Host, outcomes: Subscriber, target: str, reason: str
) -> None:
    # Given a provider whose finished task points at a hostile URL
    url = f"{hostile.origin}{target}" if target.startswith("/") else target
    marker = f"ssrf-{uuid.uuid4().hex[:8]}"
    set_faults(sb, [{"kind": "video_url", "prompt_contains": marker, "url": url}])

    job_id = put_request(sb, {"prompt": f"a video {marker}", **SMALL})
    record = wait_terminal(sb, job_id)

    assert (record["status"], record["error_code"]) == ("FAILED", "DownloadRejected"), record
    assert reason in record["error_message"]
    s3, bucket = sb.client("s3"), sb.outputs["OutputBucketName"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix=f"videos/{job_id}").get("KeyCount", 0) == 0
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    [message] = outcomes.wait_for_job(job_id)
    assert message["message"]["error"]["code"] == "DownloadRejected"
    assert "video" not in message["message"]


# --- the REST API refuses what is not signed, or not signed right

ROUTES = [
    ("POST", "/videos", {"prompt": "unsigned"}),
    ("GET", "/videos", None),
    ("GET", "/videos/job-anything", None),
    ("DELETE", "/videos/job-anything", None),
]


def _signed(
    method: str,
    url: str,
    body: bytes,
    *,
    secret: str = "testing",
    access_key: str = "testing",
    when: datetime | None = None,
) -> dict[str, str]:
    """SigV4 headers as botocore makes them, optionally for another signing time."""
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
    signer = SigV4Auth(Credentials(access_key, secret), "execute-api", "us-east-1")
    if when is None:
        signer.add_auth(request)
        return dict(request.headers.items())
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    request.context["timestamp"] = stamp
    request.headers["X-Amz-Date"] = stamp
    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    signed = signer.signed_headers(signer.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{stamp[:8]}/us-east-1/execute-api/aws4_request, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return dict(request.headers.items())


def bad_signatures(method: str, url: str, body: bytes) -> dict[str, dict[str, str]]:
    good = _signed(method, url, body)
    return {
        "unsigned": {"Content-Type": "application/json"},
        "not sigv4": {"Authorization": "Bearer something"},
        "garbled": {"Authorization": "AWS4-HMAC-SHA256 nonsense", "X-Amz-Date": good["X-Amz-Date"]},
        "short scope": {
            **good,
            "Authorization": good["Authorization"].replace("/us-east-1/execute-api/aws4_request", ""),
        },
        "wrong secret": _signed(method, url, body, secret="not-the-secret"),
        "unknown access key": _signed(method, url, body, access_key="AKIDUNKNOWN"),
        "tampered signature": {**good, "Authorization": good["Authorization"][:-4] + "0000"},
        "other path": _signed(method, url + "x", body),
        "other body": _signed(method, url, body + b" "),
        "expired": _signed(method, url, body, when=datetime.now(UTC) - timedelta(minutes=20)),
    }


@pytest.mark.parametrize(("method", "path", "payload"), ROUTES)
def test_every_route_refuses_unsigned_and_badly_signed_requests(
    sb: UserSandbox, method: str, path: str, payload: Any
) -> None:
    url = f"{sb.endpoints['api_url']}{path}"
    body = json.dumps(payload).encode() if payload is not None else b""
    before = jobs_count(sb)

    for case, headers in bad_signatures(method, url, body).items():
        answer = httpx.request(method, url, content=body, headers=headers, timeout=10)

        assert answer.status_code == 403, (case, answer.status_code, answer.text)
        assert answer.headers["content-type"].startswith("application/json"), case
        assert isinstance(answer.json().get("message"), str) and answer.json()["message"], case

    assert jobs_count(sb) == before  # no refused request created a job
    # And the same request, signed right, gets through (the refusals were about the signature).
    signed = httpx.request(method, url, content=body, headers=_signed(method, url, body), timeout=10)
    assert signed.status_code != 403, signed.text


# --- API fuzzing from docs/openapi.json (schemathesis), every request SigV4-signed

SCHEMA = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")


class SignedRequests(requests.auth.AuthBase):
    """SigV4 for `requests`, as botocore signs (host, x-amz-date and the body hash)."""

    def __init__(self, credentials: Credentials, region: str) -> None:
        self.credentials = credentials
        self.region = region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        aws = AWSRequest(
            method=request.method, url=request.url, data=body.encode() if isinstance(body, str) else body
        )
        SigV4Auth(self.credentials, "execute-api", self.region).add_auth(aws)
        request.headers.update({k: v for k, v in aws.headers.items() if k in {"Authorization", "X-Amz-Date"}})
        return request


@schemathesis.check
def errors_name_the_problem(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Every 4xx is JSON. The API's own: `{"error": {"code", "message"}}`, and a 400 or 415 names each
    offending field; the gateway's refusals (403 for unknown methods and routes): `{"message"}`."""
    if not 400 <= response.status_code < 500:
        return None
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    if response.status_code == 403 and set(body) == {"message"}:
        assert body["message"], body
        return None
    error = body.get("error")
    assert isinstance(error, dict) and error.get("code") and error.get("message"), body
    if response.status_code in {400, 415}:
        fields = error.get("fields")
        assert fields and all(f.get("field") and f.get("message") for f in fields), body
    return None


@pytest.fixture
def no_rendering(sb: UserSandbox) -> Iterator[None]:
    """Fuzzed POSTs that pass validation start real jobs: let the provider refuse their creates, so
    the run does not spend the machine rendering videos nobody looks at."""
    set_faults(sb, [{"endpoint": "create", "kind": "error", "code": "InvalidParameter"}])
    yield
    set_faults(sb, [])


def fuzz(case: schemathesis.Case, sb: UserSandbox) -> None:
    creds = sb.session.get_credentials().get_frozen_credentials()
    case.call_and_validate(
        base_url=str(sb.endpoints["api_url"]),
        auth=SignedRequests(creds, sb.config.region),
        timeout=30,
        checks=[not_a_server_error, errors_name_the_problem],
    )


@SCHEMA.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_fuzz_small(case: schemathesis.Case, sb: UserSandbox, no_rendering: None) -> None:
    fuzz(case, sb)


@pytest.mark.slow
@SCHEMA.parametrize()
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_fuzz_large(case: schemathesis.Case, sb: UserSandbox, no_rendering: None) -> None:
    fuzz(case, sb)
