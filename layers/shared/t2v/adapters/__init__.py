"""Adapters at the edge: DynamoDB, S3, SNS/EventBridge, Secrets Manager, Step Functions, HTTP download."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


def is_conditional_failure(exc: ClientError) -> bool:
    """Whether a DynamoDB write was refused by its condition (as opposed to failing)."""
    return exc.response.get("Error", {}).get("Code", "") == "ConditionalCheckFailedException"


def boto3_module() -> ModuleType:
    """boto3, imported on first use rather than at import time.

    Importing boto3 also imports s3transfer (~60-80 ms of a handler's ~300 ms cold import);
    clients are built lazily anyway, so the import waits for the first client too.
    """
    import boto3

    return boto3


class LazyTable:
    """A DynamoDB table, its boto3 resource built on first use (so tests can pass a resource in).

    The repositories over one table (`t2v.adapters.jobs_table`) share one, so a container builds the
    resource once.
    """

    def __init__(self, name: str, *, resource: Any | None = None) -> None:
        self.name = name
        self._resource = resource
        self._table: Table | None = None

    def __call__(self) -> Table:
        if self._table is None:
            resource = self._resource or boto3_module().resource("dynamodb")
            self._table = resource.Table(self.name)
        return self._table


class DynamoTable:
    """An adapter over one DynamoDB table: its name (a table of its own) or a `LazyTable` it shares."""

    def __init__(self, table: str | LazyTable, *, resource: Any | None = None) -> None:
        self._lazy_table = table if isinstance(table, LazyTable) else LazyTable(table, resource=resource)

    @property
    def table_name(self) -> str:
        return self._lazy_table.name

    @property
    def _table(self) -> Table:
        return self._lazy_table()
