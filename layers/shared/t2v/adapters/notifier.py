"""SNS and EventBridge adapter: announce a job's outcome so subscribers can filter on it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from t2v.adapters import boto3_module
from t2v.errors import EventPublishError

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_sns.client import SNSClient

SUCCEEDED_DETAIL_TYPE = "Video Generation Succeeded"
FAILED_DETAIL_TYPE = "Video Generation Failed"
BATCH_DETAIL_TYPE = "Video Batch Ended"  # a batch's one announcement (t2v.batches.batch_message)


class Notifier:
    def __init__(
        self,
        *,
        topic_arn: str,
        event_bus_name: str,
        event_source: str,
        sns: SNSClient | None = None,
        events: EventBridgeClient | None = None,
    ) -> None:
        self._topic_arn = topic_arn
        self._bus = event_bus_name
        self._source = event_source
        self._sns = sns
        self._events = events

    @property
    def _sns_client(self) -> SNSClient:
        if self._sns is None:  # one client per container, built on the first publish
            self._sns = boto3_module().client("sns")
        return self._sns

    @property
    def _events_client(self) -> EventBridgeClient:
        if self._events is None:
            self._events = boto3_module().client("events")
        return self._events

    def publish(self, message: dict[str, Any]) -> str:
        """The SNS message (attributes `status`, `source`, `owner` and `notification_id` for filtering
        and deduplication; `owner` is `none` for a job refused before it had one). Returns its message id."""
        status = str(message["status"])
        if "batch_id" in message and "job_id" not in message:
            subject = f"Video batch {status}: {message['batch_id']}"
        elif status == "SUCCEEDED":
            subject = f"Video ready: {message['job_id']}"
        else:
            subject = f"Video generation {status}: {message['job_id']}"
        result = self._sns_client.publish(
            TopicArn=self._topic_arn,
            Subject=subject[:100],
            Message=json.dumps(message, ensure_ascii=False, sort_keys=True),
            MessageAttributes={
                "status": {"DataType": "String", "StringValue": status},
                "source": {"DataType": "String", "StringValue": str(message.get("source") or "unknown")},
                "owner": {"DataType": "String", "StringValue": str(message.get("owner") or "none")},
                "notification_id": {
                    "DataType": "String",
                    "StringValue": str(message.get("notification_id") or message.get("job_id")),
                },
            },
        )
        return str(result["MessageId"])

    def put_event(self, message: dict[str, Any]) -> None:
        """`Video Generation Succeeded` or `Video Generation Failed` on the bus; EventPublishError when
        EventBridge refused it."""
        succeeded = str(message["status"]) == "SUCCEEDED"
        detail_type = SUCCEEDED_DETAIL_TYPE if succeeded else FAILED_DETAIL_TYPE
        if "batch_id" in message and "job_id" not in message:
            detail_type = BATCH_DETAIL_TYPE
        answer = self._events_client.put_events(
            Entries=[
                {
                    "Source": self._source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(message, ensure_ascii=False),
                    "EventBusName": self._bus,
                    "Resources": [],
                }
            ]
        )
        # PutEvents answers 200 even when it refused an entry; only FailedEntryCount tells.
        if answer.get("FailedEntryCount"):
            refused = [e for e in answer.get("Entries", []) if e.get("ErrorCode")]
            reasons = "; ".join(
                f"{e['ErrorCode']}: {e.get('ErrorMessage', '')}".rstrip(": ") for e in refused
            )
            raise EventPublishError(
                f"EventBridge refused the outcome event of {message.get('job_id') or message.get('batch_id')}: {reasons}"
            )
