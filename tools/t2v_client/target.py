"""Where the API is: the sandbox's `.sandbox/endpoints.json` or a deployed stack's outputs.

A sandbox offers several callers (`identities` in its endpoints file: a key pair and an IAM user ARN
each); `t2v --as NAME` or `T2V_IDENTITY` picks one, and with neither the sandbox's default signs.
On AWS the caller is whoever the boto3 credentials are (`--profile`, `AWS_PROFILE`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from botocore.credentials import Credentials, ReadOnlyCredentials

from t2v_client.errors import CliError, ExitCode

DEFAULT_ENDPOINTS: Final = Path(".sandbox/endpoints.json")
IDENTITY_ENV: Final = "T2V_IDENTITY"
DEFAULT_IDENTITY: Final = "default"


@dataclass(frozen=True)
class Target:
    api_url: str  # e.g. http://127.0.0.1:PORT/Prod or https://ID.execute-api.REGION.amazonaws.com/Prod
    region: str
    credentials: Credentials | ReadOnlyCredentials | None  # None: unsigned (API key mode or no auth)
    api_key: str | None = None
    identity: str | None = None  # the sandbox identity it signs as (None on AWS)


@dataclass(frozen=True)
class SandboxIdentity:
    """One caller a sandbox offers: its name, key pair and the IAM user ARN the API sees."""

    name: str
    credentials: Credentials
    user_arn: str | None = None
    admin: bool = False


def read_endpoints(endpoints_file: Path = DEFAULT_ENDPOINTS) -> dict[str, Any]:
    """The sandbox's endpoints file; CliError(UNREACHABLE) naming what to do when it is missing."""
    try:
        endpoints: dict[str, Any] = json.loads(endpoints_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(
            f"no sandbox endpoints at {endpoints_file}: start one with `t2v sandbox up` (or pass --stack NAME)",
            ExitCode.UNREACHABLE,
        ) from None
    except ValueError as exc:
        raise CliError(f"{endpoints_file} is not valid JSON: {exc}", ExitCode.UNREACHABLE) from None
    return endpoints


def _keys(entry: dict[str, Any]) -> Credentials:
    return Credentials(str(entry.get("aws_access_key_id")), str(entry.get("aws_secret_access_key")))


def sandbox_identities(endpoints: dict[str, Any]) -> dict[str, SandboxIdentity]:
    """Every identity the sandbox offers, by name; a file from before identities has its one
    `credentials` pair as `default`."""
    found = {
        str(name): SandboxIdentity(
            str(name), _keys(entry), entry.get("user_arn") or None, admin=bool(entry.get("admin"))
        )
        for name, entry in (endpoints.get("identities") or {}).items()
        if isinstance(entry, dict)
    }
    default = str(endpoints.get("default_identity") or DEFAULT_IDENTITY)
    if default not in found:
        found = {default: SandboxIdentity(default, _keys(endpoints.get("credentials") or {})), **found}
    return found


def chosen_identity(name: str | None = None) -> str | None:
    """The identity asked for: `--as NAME` first, then $T2V_IDENTITY; None for the sandbox's default."""
    return name or os.environ.get(IDENTITY_ENV) or None


def pick_identity(endpoints: dict[str, Any], name: str | None) -> SandboxIdentity:
    """The identity called `name` (None: the sandbox's default); CliError naming the known ones."""
    identities = sandbox_identities(endpoints)
    wanted = name or str(endpoints.get("default_identity") or DEFAULT_IDENTITY)
    if wanted not in identities:
        raise CliError(f"no sandbox identity {wanted!r}; known: {', '.join(identities)}", ExitCode.INVALID)
    return identities[wanted]


def sandbox_target(endpoints_file: Path = DEFAULT_ENDPOINTS, identity: str | None = None) -> Target:
    """The sandbox's API, signed as `identity` (else $T2V_IDENTITY, else the sandbox's default)."""
    endpoints = read_endpoints(endpoints_file)
    api_url = endpoints.get("api_url")
    if not api_url:
        raise CliError(
            f"the sandbox in {endpoints_file} has no REST API (template.yaml declares none yet)",
            ExitCode.UNREACHABLE,
        )
    return target_as(endpoints, pick_identity(endpoints, chosen_identity(identity)))


def target_as(endpoints: dict[str, Any], identity: SandboxIdentity) -> Target:
    return Target(
        api_url=str(endpoints.get("api_url") or "").rstrip("/"),
        region=str(endpoints.get("region") or "us-east-1"),
        credentials=identity.credentials,
        api_key=os.environ.get("T2V_API_KEY"),
        identity=identity.name,
    )


def api_url_from_outputs(outputs: dict[str, str]) -> str | None:
    """The API's base URL among stack outputs: a key naming an API URL, else any execute-api URL."""
    for key in ("ApiUrl", "ApiEndpoint", "ApiBaseUrl", "RestApiUrl"):
        if outputs.get(key):
            return outputs[key].rstrip("/")
    for value in outputs.values():
        if isinstance(value, str) and ".execute-api." in value and value.startswith("https://"):
            return value.rstrip("/")
    return None
