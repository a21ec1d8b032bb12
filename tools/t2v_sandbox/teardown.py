"""`t2v teardown --stack NAME --yes`: remove a deployed stack, its videos included.

`sam delete` alone fails on the stack's bucket: it is versioned, and CloudFormation deletes only an
empty bucket (no object versions, no delete markers). This empties it, then deletes the stack and
waits; objects that land meanwhile (jobs still finishing) are removed on a second pass. The log
groups are resources of the stack, so they go with it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from t2v_client import CliError, ExitCode
from t2v_client.place import samconfig_region

BUCKET_OUTPUT = "OutputBucketName"
DELETE_BATCH = 1000  # the most DeleteObjects accepts at once
ATTEMPTS = 3


@dataclass(frozen=True)
class TeardownReport:
    stack: str
    bucket: str | None
    versions_deleted: int


def empty_bucket(s3: Any, bucket: str, *, page_size: int = DELETE_BATCH) -> int:
    """Delete every object version and delete marker; returns how many went.

    Always lists from the start (no markers): what a page deleted cannot be the next page's marker.
    """
    deleted = 0
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=page_size)
        entries = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        if not entries:
            return deleted
        objects = [{"Key": e["Key"], "VersionId": e["VersionId"]} for e in entries][:DELETE_BATCH]
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        if answer.get("Errors"):
            first = answer["Errors"][0]
            raise CliError(
                f"s3://{bucket}/{first.get('Key')}: {first.get('Code')}: {first.get('Message')} "
                f"({len(answer['Errors'])} objects not deleted)"
            )
        deleted += len(objects)


def _bucket_of(cfn: Any, stack: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        found = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        raise CliError(f"stack {stack!r}: {exc}", ExitCode.UNREACHABLE) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    return outputs.get(BUCKET_OUTPUT)


def teardown(session: Any, stack: str, *, out: TextIO = sys.stderr) -> TeardownReport:
    from botocore.exceptions import ClientError, WaiterError

    cfn, s3 = session.client("cloudformation"), session.client("s3")
    bucket = _bucket_of(cfn, stack)
    deleted = 0
    for attempt in range(1, ATTEMPTS + 1):
        if bucket:
            try:
                deleted += empty_bucket(s3, bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
                    raise CliError(f"s3://{bucket}: {exc}") from None
            print(f"emptied s3://{bucket} ({deleted} object versions deleted)", file=out)
        cfn.delete_stack(StackName=stack)
        print(f"deleting stack {stack} (attempt {attempt})...", file=out)
        try:
            cfn.get_waiter("stack_delete_complete").wait(
                StackName=stack, WaiterConfig={"Delay": 5, "MaxAttempts": 360}
            )
        except WaiterError as exc:
            if attempt == ATTEMPTS:
                raise CliError(f"stack {stack} was not deleted: {exc}") from None
            continue  # most likely a video landed after the bucket was emptied: empty it again
        print(f"stack {stack} deleted", file=out)
        return TeardownReport(stack, bucket, deleted)
    raise CliError(f"stack {stack} was not deleted")  # pragma: no cover - the loop returns or raises


def run_teardown(args: argparse.Namespace) -> int:
    import boto3

    if not args.yes:
        print(
            f"t2v teardown deletes stack {args.stack!r} and every video in its bucket, all versions;"
            " run again with --yes to do it",
            file=sys.stderr,
        )
        return int(ExitCode.INVALID)
    try:
        teardown(boto3.Session(region_name=args.region or samconfig_region()), args.stack)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.code)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "teardown", help="delete a deployed stack: empty its versioned bucket, then delete the stack"
    )
    parser.add_argument("--stack", required=True, metavar="NAME", help="the stack's name")
    parser.add_argument(
        "--region", help="its region (default: samconfig.toml's here, else AWS_REGION or the profile's)"
    )
    parser.add_argument("--yes", action="store_true", help="really delete (videos included)")
    parser.set_defaults(func=run_teardown)
