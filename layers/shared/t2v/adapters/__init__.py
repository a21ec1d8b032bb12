"""Adapters at the edge: DynamoDB, S3, SNS/EventBridge, Secrets Manager, Step Functions, HTTP download."""

from __future__ import annotations

from types import ModuleType


def boto3_module() -> ModuleType:
    """boto3, imported on first use rather than at import time.

    Importing boto3 also imports s3transfer (~60-80 ms of a handler's ~300 ms cold import);
    clients are built lazily anyway, so the import waits for the first client too.
    """
    import boto3

    return boto3
