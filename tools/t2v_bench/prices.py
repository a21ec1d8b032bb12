"""AWS list prices used by the cost benchmark: us-east-1, on-demand, no free tier, as published in
November 2026 (the date of this benchmark). Edit here when they change; the figures are re-derived
from the JSON results, so a re-run is not needed to re-price.
"""

from __future__ import annotations

from typing import Final

PRICE_DATE: Final = "2026-11 (AWS public price pages, us-east-1)"

# Sources (list prices, us-east-1, read 2026-11; the batch arithmetic of issue 24 re-checked them
# 2026-12 and uses the same):
#   Step Functions https://aws.amazon.com/step-functions/pricing/
#   Lambda         https://aws.amazon.com/lambda/pricing/
#   DynamoDB       https://aws.amazon.com/dynamodb/pricing/on-demand/
#   S3             https://aws.amazon.com/s3/pricing/ (Requests & data retrievals, S3 Standard)
#   SNS            https://aws.amazon.com/sns/pricing/ (standard topics, API requests)
#   EventBridge    https://aws.amazon.com/eventbridge/pricing/ (custom events, event bus)

# Step Functions Standard: per state transition (each state entered, retries included).
SFN_TRANSITION: Final = 0.025 / 1000
# Lambda: per request, and per GB-second by architecture (template.yaml deploys arm64).
LAMBDA_REQUEST: Final = 0.20 / 1_000_000
LAMBDA_GB_SECOND: Final = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
# DynamoDB on-demand: per write request unit (1 KB) and read request unit (4 KB, strongly consistent).
DDB_WRU: Final = 0.625 / 1_000_000
DDB_RRU: Final = 0.125 / 1_000_000
# S3 Standard: PUT/COPY/POST/LIST class and GET/HEAD class requests (multipart parts are PUTs).
S3_PUT_CLASS: Final = 0.005 / 1000
S3_GET_CLASS: Final = 0.0004 / 1000
# SNS: per publish request (64 KB chunks); EventBridge: per custom event put (64 KB chunks).
SNS_PUBLISH: Final = 0.50 / 1_000_000
EVENTBRIDGE_EVENT: Final = 1.00 / 1_000_000
# Secrets Manager: per API call; API Gateway REST: per request; X-Ray: per trace recorded.
SECRETS_CALL: Final = 0.05 / 10_000
APIGW_REST_REQUEST: Final = 3.50 / 1_000_000
XRAY_TRACE: Final = 5.00 / 1_000_000
# CloudWatch Logs: per GB ingested (standard class).
LOGS_GB: Final = 0.50
