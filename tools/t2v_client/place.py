"""Where a stack lives, beyond its API: AWS clients, the prompt bucket, the topic and the bus.

The `t2v console` uploads prompt files and `t2v events` follows SNS and EventBridge; both find
these from the sandbox's `.sandbox/endpoints.json` or a deployed stack's outputs and parameters.
Credentials stay in this process: nothing here is ever sent to a browser.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from t2v_client.errors import CliError, ExitCode
from t2v_client.target import DEFAULT_ENDPOINTS, Target, api_url_from_outputs, sandbox_target


@dataclass(frozen=True)
class Place:
    target: Target  # the REST API, signed with the same credentials
    session: Any  # boto3.Session
    endpoint_url: str | None  # moto's URL in the sandbox; None on AWS
    outputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    sandbox: bool = False

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    @property
    def bucket(self) -> str | None:
        return self.outputs.get("OutputBucketName")

    @property
    def input_prefix(self) -> str:
        return self.parameters.get("InputPrefix") or "prompts/"

    @property
    def topic_arn(self) -> str | None:
        return self.outputs.get("OutcomeTopicArn")

    @property
    def event_bus(self) -> str:
        return self.parameters.get("EventBusName") or "default"


def sandbox_place(endpoints_file: Path = DEFAULT_ENDPOINTS) -> Place:
    target = sandbox_target(endpoints_file)  # raises the friendly errors for a missing file
    endpoints = json.loads(endpoints_file.read_text(encoding="utf-8"))
    creds = endpoints.get("credentials") or {}
    session = boto3.Session(
        aws_access_key_id=creds.get("aws_access_key_id"),
        aws_secret_access_key=creds.get("aws_secret_access_key"),
        region_name=target.region,
    )
    return Place(
        target=target,
        session=session,
        endpoint_url=endpoints.get("moto_url"),
        outputs={k: str(v) for k, v in (endpoints.get("outputs") or {}).items()},
        parameters={k: str(v) for k, v in (endpoints.get("parameters") or {}).items()},
        sandbox=True,
    )


def stack_place(stack_name: str, region: str | None = None) -> Place:
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.Session(region_name=region)
    try:
        stack = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as exc:
        raise CliError(f"stack {stack_name!r}: {exc}", ExitCode.UNREACHABLE) from None
    except BotoCoreError as exc:
        raise CliError(f"cannot reach CloudFormation: {exc}", ExitCode.UNREACHABLE) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    api_url = api_url_from_outputs(outputs)
    if api_url is None:
        raise CliError(f"stack {stack_name!r} has no API URL among its outputs", ExitCode.UNREACHABLE)
    credentials = session.get_credentials()
    if credentials is None:
        raise CliError("no AWS credentials found (the default chain is empty)", ExitCode.UNREACHABLE)
    target = Target(
        api_url=api_url,
        region=session.region_name or "us-east-1",
        credentials=credentials.get_frozen_credentials(),
        api_key=os.environ.get("T2V_API_KEY"),
    )
    return Place(target=target, session=session, endpoint_url=None, outputs=outputs, parameters=parameters)


def resolve_place(stack: str | None, region: str | None, endpoints: Path = DEFAULT_ENDPOINTS) -> Place:
    return stack_place(stack, region) if stack else sandbox_place(endpoints)
