"""`t2v teardown`: a stack whose versioned bucket holds versions and delete markers goes, bucket and all."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from t2v_sandbox import cli
from t2v_sandbox.teardown import empty_bucket, teardown

pytestmark = pytest.mark.integration

STACK_TEMPLATE = {
    "Resources": {
        "OutputBucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"VersioningConfiguration": {"Status": "Enabled"}},
        }
    },
    "Outputs": {"OutputBucketName": {"Value": {"Ref": "OutputBucket"}}},
}


def _versioned_stack(name: str, objects: int) -> tuple[boto3.Session, str]:
    session = boto3.Session()
    cfn, s3 = session.client("cloudformation"), session.client("s3")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(STACK_TEMPLATE))
    outputs = cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    bucket = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "OutputBucketName")
    # moto's CloudFormation ignores VersioningConfiguration: set it as the template would
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for i in range(objects):
        s3.put_object(Bucket=bucket, Key=f"videos/{i}.mp4", Body=b"v1")
        s3.put_object(Bucket=bucket, Key=f"videos/{i}.mp4", Body=b"v2")  # a noncurrent version
        s3.delete_object(Bucket=bucket, Key=f"videos/{i}.mp4")  # a delete marker
    return session, bucket


def test_teardown_empties_every_version_then_deletes_the_stack(moto_server: str) -> None:
    # Given a stack whose bucket holds 2 versions and a delete marker per key
    session, bucket = _versioned_stack("teardown-ok", 20)
    out = io.StringIO()
    # When it is torn down
    report = teardown(session, "teardown-ok", out=out)
    # Then every version and marker went, then the bucket and the stack
    assert report.versions_deleted == 3 * 20
    assert bucket not in {b["Name"] for b in session.client("s3").list_buckets()["Buckets"]}
    stacks = session.client("cloudformation").list_stacks()["StackSummaries"]
    assert {s["StackStatus"] for s in stacks if s["StackName"] == "teardown-ok"} == {"DELETE_COMPLETE"}
    assert "stack teardown-ok deleted" in out.getvalue()


def test_empty_bucket_takes_page_after_page(moto_server: str) -> None:
    # Given more versions and markers than one listing page holds
    session, bucket = _versioned_stack("teardown-pages", 40)
    s3 = session.client("s3")
    # When emptied 25 at a time, then Then all 120 go, and a second pass finds nothing
    assert empty_bucket(s3, bucket, page_size=25) == 120
    assert empty_bucket(s3, bucket) == 0


def test_teardown_without_yes_deletes_nothing_and_says_how(
    moto_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    session, bucket = _versioned_stack("teardown-ask", 1)
    with pytest.raises(SystemExit) as exited:
        cli.main(["teardown", "--stack", "teardown-ask"])
    assert exited.value.code == 2
    assert "--yes" in capsys.readouterr().err
    assert session.client("s3").list_object_versions(Bucket=bucket)["Versions"]


def test_teardown_of_a_missing_stack_names_it(moto_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["teardown", "--stack", "no-such-stack", "--yes"])
    assert exited.value.code == 5
    assert "stack 'no-such-stack'" in capsys.readouterr().err
