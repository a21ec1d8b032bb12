"""Integration fixtures: a real moto server over HTTP, resources built from template.yaml."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _tag)


def load_template() -> dict[str, Any]:
    data: dict[str, Any] = yaml.load((ROOT / "template.yaml").read_text(encoding="utf-8"), Loader=_CfnLoader)
    return data


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer
    from t2v_sandbox import moto_atomic

    moto_atomic.install()  # conditional writes atomic, as in DynamoDB
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    saved = {
        k: os.environ.get(k)
        for k in (
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
        )
    }
    os.environ.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
    )
    try:
        yield url
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Stack:
    """The template's data resources, created in moto with unique names for one test."""

    table: str
    bucket: str
    topic_arn: str
    queue_url: str
    secret_id: str
    api_key: str
    env: dict[str, str] = field(default_factory=dict)

    def notifications(self) -> list[dict[str, Any]]:
        """Every SNS message the topic delivered so far (through an SQS subscriber)."""
        sqs = boto3.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = got.get("Messages", [])
            if not messages:
                return out
            for m in messages:
                envelope = json.loads(m["Body"])
                out.append(
                    {
                        "message": json.loads(envelope["Message"]),
                        "subject": envelope.get("Subject"),
                        "attributes": {
                            k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()
                        },
                    }
                )
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def job(self, job_id: str) -> dict[str, Any] | None:
        """The job's item as stored (what a user of the table sees), numbers as ints and floats."""
        from t2v.adapters.jobs_table import plain

        item = boto3.resource("dynamodb").Table(self.table).get_item(Key={"pk": job_id}, ConsistentRead=True)
        return plain(item["Item"]) if "Item" in item else None


@pytest.fixture
def stack(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Stack:
    suffix = uuid.uuid4().hex[:8]
    props = load_template()["Resources"]["JobsTable"]["Properties"]
    ddb = boto3.client("dynamodb")
    table = f"jobs-{suffix}"
    ddb.create_table(
        TableName=table,
        BillingMode=props["BillingMode"],
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
    )
    bucket = f"videos-{suffix}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    sns = boto3.client("sns")
    topic_arn = sns.create_topic(Name=f"outcomes-{suffix}")["TopicArn"]
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"outcomes-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    secret_id = f"t2v/key-{suffix}"
    api_key = f"sk-test-{suffix}"
    boto3.client("secretsmanager").create_secret(Name=secret_id, SecretString=api_key)
    env = {
        "JOBS_TABLE": table,
        "DASHSCOPE_SECRET_ID": secret_id,
        "OUTPUT_BUCKET": bucket,
        "TOPIC_ARN": topic_arn,
        "POLL_INTERVAL_SECONDS": "1",
        # moto's indexes never lag its tables (the guard against a real GSI's lag is tested on fakes)
        "INDEX_LAG_SECONDS": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Stack(table, bucket, topic_arn, queue_url, secret_id, api_key, env)
