"""Command-line options the `t2v` commands and the `t2v console` share: who calls."""

from __future__ import annotations

from typing import Any

from t2v_client.target import IDENTITY_ENV


def add_caller_options(group: Any) -> None:
    """`--as NAME` (a sandbox identity) and `--profile NAME` (an AWS profile, with `--stack`)."""
    group.add_argument(
        "--as",
        "--identity",
        dest="identity",
        metavar="NAME",
        help=f"sandbox only: call as this sandbox identity (default: ${IDENTITY_ENV}, else the sandbox's "
        "default); the names are in the endpoints file's `identities`",
    )
    group.add_argument(
        "--profile",
        metavar="NAME",
        help="with --stack: the AWS profile whose credentials sign (default: AWS_PROFILE, else the default chain)",
    )
