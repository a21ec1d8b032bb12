"""Where a stack lives, beyond its API: AWS clients, the prompt bucket, the topic and the bus.

The `t2v console` uploads prompt files and `t2v events` follows SNS and EventBridge; both find
these from the sandbox's `.sandbox/endpoints.json` or a deployed stack's outputs and parameters.
Credentials stay in this process: nothing here is ever sent to a browser.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import boto3

from t2v_client.errors import CliError, ExitCode
from t2v_client.target import (
    DEFAULT_ENDPOINTS,
    SandboxIdentity,
    Target,
    api_url_from_outputs,
    chosen_identity,
    pick_identity,
    read_endpoints,
    sandbox_identities,
    sandbox_target,
    target_as,
)


@dataclass(frozen=True)
class Place:
    target: Target  # the REST API, signed with the same credentials
    session: Any  # boto3.Session
    endpoint_url: str | None  # moto's URL in the sandbox; None on AWS
    outputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    sandbox: bool = False
    # The sandbox's callers, by name (empty on AWS, where the credentials say who calls).
    identities: dict[str, SandboxIdentity] = field(default_factory=dict, repr=False)
    endpoints: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_identity(self, name: str) -> Place:
        """The same sandbox, signed as the identity `name`; CliError naming the known ones."""
        if not self.sandbox:
            raise CliError("identities are the sandbox's; on AWS pick a caller with --profile or AWS_PROFILE")
        identity = pick_identity(self.endpoints, name)
        return replace(
            self,
            target=target_as(self.endpoints, identity),
            session=_session(identity, self.target.region),
        )

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


def _session(identity: SandboxIdentity, region: str) -> Any:
    return boto3.Session(
        aws_access_key_id=identity.credentials.access_key,
        aws_secret_access_key=identity.credentials.secret_key,
        region_name=region,
    )


def sandbox_place(endpoints_file: Path = DEFAULT_ENDPOINTS, identity: str | None = None) -> Place:
    """The sandbox, signed as `identity` (else $T2V_IDENTITY, else the sandbox's default)."""
    sandbox_target(endpoints_file, identity)  # raises the friendly errors for a missing file or API
    return sandbox_place_of(read_endpoints(endpoints_file), identity)


def sandbox_place_of(endpoints: dict[str, Any], identity: str | None = None) -> Place:
    """The sandbox whose endpoints are these (a sandbox in this process: the soak's), as `identity`."""
    chosen = pick_identity(endpoints, chosen_identity(identity))
    target = target_as(endpoints, chosen)
    return Place(
        target=target,
        session=_session(chosen, target.region),
        endpoint_url=endpoints.get("moto_url"),
        outputs={k: str(v) for k, v in (endpoints.get("outputs") or {}).items()},
        parameters={k: str(v) for k, v in (endpoints.get("parameters") or {}).items()},
        sandbox=True,
        identities=sandbox_identities(endpoints),
        endpoints=endpoints,
    )


SAMCONFIG: Final = Path("samconfig.toml")


def samconfig_region(path: Path = SAMCONFIG) -> str | None:
    """The region `sam deploy` uses from here: samconfig.toml's deploy, else global, parameters."""
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    default = config.get("default") or {}
    for command in ("deploy", "global"):
        region = ((default.get(command) or {}).get("parameters") or {}).get("region")
        if isinstance(region, str) and region:
            return region
    return None


def stack_place(stack_name: str, region: str | None = None, profile: str | None = None) -> Place:
    """A deployed stack; its region is `region`, else samconfig.toml's (where it was deployed from),
    else the default chain's (AWS_REGION, the profile)."""
    from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

    try:
        session = boto3.Session(region_name=region or samconfig_region(), profile_name=profile)
    except ProfileNotFound as exc:
        raise CliError(str(exc), ExitCode.INVALID) from None
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


def resolve_place(
    stack: str | None,
    region: str | None,
    endpoints: Path = DEFAULT_ENDPOINTS,
    *,
    identity: str | None = None,
    profile: str | None = None,
) -> Place:
    """A deployed stack (`stack`, signed with the profile's or the default chain's credentials) or the
    sandbox (signed as `identity`); CliError for an option of the other kind."""
    check_place_options(stack, identity=identity, profile=profile)
    return stack_place(stack, region, profile) if stack else sandbox_place(endpoints, identity)


def check_place_options(stack: str | None, *, identity: str | None, profile: str | None) -> None:
    """`--as` names a sandbox identity and `--profile` an AWS profile: each needs its own kind of place."""
    if stack and identity:
        raise CliError(
            "--as picks a sandbox identity; on AWS the caller is your credentials: use --profile NAME "
            "or AWS_PROFILE",
            ExitCode.INVALID,
        )
    if profile and not stack:
        raise CliError(
            "--profile is for a deployed stack (--stack NAME); in the sandbox pick a caller with --as NAME",
            ExitCode.INVALID,
        )
