"""docs/deployer-policy.json covers what `sam deploy` of template.yaml asks of the deployer.

Nothing here reaches AWS. The template is translated as CloudFormation's SAM transform does (the
sandbox's translator, offline), and every resource type it yields must be granted the actions its
CloudFormation handlers list (create, read, update, delete: the resource schemas cfn-lint ships),
apart from the few tied to features this template does not use, each named below with why.
"""

from __future__ import annotations

import fnmatch
import json
from functools import cache
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from t2v_sandbox.template import load_template, prepare_sam, translate

from tests.conftest import ROOT

POLICY = json.loads((ROOT / "docs" / "deployer-policy.json").read_text(encoding="utf-8"))
# What other work on the stack is adding (alarms, a dashboard, an ops topic): granted already.
ANTICIPATED = frozenset({"AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard", "AWS::SNS::Topic"})
# The IAM service prefix of each CloudFormation service a resource type belongs to.
SERVICE_PREFIX: dict[str, str] = {
    "ApiGateway": "apigateway",
    "CloudWatch": "cloudwatch",
    "DynamoDB": "dynamodb",
    "Events": "events",
    "IAM": "iam",
    "Lambda": "lambda",
    "Logs": "logs",
    "S3": "s3",
    "SNS": "sns",
    "SQS": "sqs",
    "SecretsManager": "secretsmanager",
    "StepFunctions": "states",
}
# Handler actions for features the template does not use (fnmatch patterns, case-insensitive).
NOT_USED: dict[str, str] = {
    "dynamodb:*Replica": "global table replicas",
    "dynamodb:ImportTable": "tables imported from S3",
    "dynamodb:*KinesisStreamingDestination": "Kinesis streams of changes (Describe* is granted)",
    "dynamodb:PutResourcePolicy": "a resource policy on the table",
    "dynamodb:DeleteResourcePolicy": "as above",
    "dynamodb:*Item": "imports and replicas write items; CloudFormation never does for this table",
    "dynamodb:Query": "as above",
    "dynamodb:Scan": "as above",
    "lambda:PassCapacityProvider": "Lambda managed instances",
    "lambda:PutFunctionScalingConfig": "Lambda managed instances",
    "lambda:*CodeSigningConfig": "code signing (Get is granted)",
    "logs:PutDataProtectionPolicy": "data protection policies",
    "logs:*IndexPolicy": "field index policies",
    "logs:PutBearerTokenAuthentication": "bearer-token ingestion",
    "logs:*KmsKey": "log groups encrypted with a customer managed key",
    "logs:PutLogGroupDeletionProtection": "deletion protection",
    "s3:*Metadata*": "S3 Metadata tables",
    "s3:PutBucketAbac": "attribute-based access control",
    "s3:*Accelerate*": "transfer acceleration",
    "s3:*Analytics*": "storage class analysis",
    "s3:*Cors": "CORS",
    "s3:PutBucketLogging": "server access logs",
    "s3:*ObjectLock*": "object lock",
    "s3:*Replication*": "replication",
    "s3:*Website*": "website hosting",
    "s3:*IntelligentTiering*": "Intelligent-Tiering",
    "s3:*Inventory*": "inventory reports",
    "s3:*Metrics*": "request metrics",
    "s3:Put*Acl": "ACLs (the bucket enforces bucket-owner ownership: ACLs are off)",
    "secretsmanager:*Replicat*": "secrets replicated to other regions",
}
SAM_DEPLOY_NEEDS = {  # what `sam deploy` (change sets, resolve_s3's managed stack) and `sam delete` call
    "cloudformation:CreateChangeSet",
    "cloudformation:DescribeChangeSet",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:DeleteChangeSet",
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents",
    "cloudformation:GetTemplate",
    "cloudformation:DeleteStack",
    "s3:PutObject",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:CreateBucket",
    "s3:PutBucketPolicy",
    "s3:PutBucketVersioning",
    "s3:PutBucketTagging",
}


class _NoUpload:
    """Stands in for the sandbox's packager: the translation needs an S3 URI, not the code."""

    def package(self, logical_id: str, uri: Any) -> str:
        return f"s3://artifacts/{logical_id}.zip"


@cache
def deployed_types() -> frozenset[str]:
    template = prepare_sam(load_template(ROOT / "template.yaml"), ROOT, _NoUpload())  # type: ignore[arg-type]
    translated = translate(template, {}, "us-east-1")
    return frozenset(res["Type"] for res in translated["Resources"].values())


def allowed_actions() -> list[str]:
    found: list[str] = []
    for statement in POLICY["Statement"]:
        if statement["Effect"] == "Allow":
            action = statement["Action"]
            found.extend([action] if isinstance(action, str) else action)
    return found


def granted(action: str) -> bool:
    return any(fnmatch.fnmatch(action.lower(), pattern.lower()) for pattern in allowed_actions())


def not_used(action: str) -> bool:
    return any(fnmatch.fnmatch(action.lower(), pattern.lower()) for pattern in NOT_USED)


def service_of(resource_type: str) -> str:
    return SERVICE_PREFIX[resource_type.split("::")[1]]


def handler_actions(resource_type: str) -> set[str]:
    handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema["handlers"]
    return {
        action
        for name in ("create", "read", "update", "delete")
        for action in handlers.get(name, {}).get("permissions", [])
    }


def test_the_translated_template_deploys_cloudformation_types_only() -> None:
    assert deployed_types()
    assert not [kind for kind in deployed_types() if kind.startswith("AWS::Serverless::")]


@pytest.mark.parametrize("resource_type", sorted(deployed_types() | ANTICIPATED))
def test_every_resource_type_has_its_service_in_the_policy(resource_type: str) -> None:
    service = resource_type.split("::")[1]
    assert service in SERVICE_PREFIX, f"{resource_type}: add its IAM prefix to SERVICE_PREFIX and the policy"
    assert any(action.startswith(f"{service_of(resource_type)}:") for action in allowed_actions())


@pytest.mark.parametrize("resource_type", sorted(deployed_types() | ANTICIPATED))
def test_the_policy_grants_what_cloudformation_does_for_each_type(resource_type: str) -> None:
    # Given what CloudFormation calls, with the deployer's credentials, for this type
    own = {a for a in handler_actions(resource_type) if a.startswith(f"{service_of(resource_type)}:")}
    # Then each action of the type's own service is granted, unless only an unused feature needs it
    missing = sorted(action for action in own if not granted(action) and not not_used(action))
    assert not missing, f"{resource_type} needs {missing}: add them to docs/deployer-policy.json"


def test_roles_are_passed_to_the_functions_and_the_state_machine_only() -> None:
    needs_pass = [t for t in deployed_types() if "iam:PassRole" in handler_actions(t)]
    assert needs_pass
    (statement,) = [s for s in POLICY["Statement"] if "iam:PassRole" in [s["Action"]]]
    assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == [
        "lambda.amazonaws.com",
        "states.amazonaws.com",
    ]
    assert statement["Resource"] == "arn:aws:iam::*:role/t2v-*"


def test_sam_deploy_and_delete_are_granted() -> None:
    assert sorted(action for action in SAM_DEPLOY_NEEDS if not granted(action)) == []
    transform = [s for s in POLICY["Statement"] if s["Sid"] == "SamTransform"]
    assert transform[0]["Resource"].endswith(":aws:transform/Serverless-2016-10-31")


def test_the_policy_is_a_well_formed_managed_policy() -> None:
    assert POLICY["Version"] == "2012-10-17"
    sids = [statement["Sid"] for statement in POLICY["Statement"]]
    assert len(sids) == len(set(sids))
    for action in allowed_actions():
        prefix, _, name = action.partition(":")
        assert prefix.isidentifier() or prefix == "execute-api", action
        assert name, action
    # IAM's limit for a managed policy: 6,144 characters, whitespace not counted.
    text = (ROOT / "docs" / "deployer-policy.json").read_text(encoding="utf-8")
    assert len("".join(text.split())) <= 6144


def test_no_action_granted_is_only_for_an_unused_feature() -> None:
    assert [action for action in allowed_actions() if not_used(action) and "*" not in action] == []


def test_the_readme_points_at_the_policy() -> None:
    assert "docs/deployer-policy.json" in (ROOT / "README.md").read_text(encoding="utf-8")
