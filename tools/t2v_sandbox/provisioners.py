"""One creator per CloudFormation resource type, each calling moto's APIs the way CloudFormation would."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3


@dataclass
class Created:
    """What CloudFormation would expose for a resource: its Ref value and its GetAtt attributes."""

    ref: Any
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ApiSpec:
    """A REST API the HTTP front serves: its OpenAPI body (intrinsics resolved) and stages."""

    logical_id: str
    api_id: str
    body: dict[str, Any]
    stages: list[str] = field(default_factory=list)


def service_client(session: boto3.Session, service: str, **kwargs: Any) -> Any:
    """A client of a service named at run time (boto3-stubs types `client()` per literal name only)."""
    return session.client(service, **kwargs)  # type: ignore[call-overload]  # no `str` overload in the stubs


@dataclass
class DeployContext:
    session: boto3.Session
    endpoint: str
    stack_name: str
    region: str
    account: str
    notes: list[str] = field(default_factory=list)
    apis: dict[str, ApiSpec] = field(default_factory=dict)
    api_keys: list[str] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = service_client(self.session, service, endpoint_url=self.endpoint)
        return self._clients[service]

    def name(self, logical_id: str, limit: int = 64, lower: bool = False) -> str:
        value = f"{self.stack_name}-{logical_id}"
        if len(value) > limit:
            # Like CloudFormation: both parts shortened, and a suffix keeps names of one stack apart.
            digest = hashlib.sha256(value.encode()).hexdigest()[:8]
            stack_part = min(len(self.stack_name), (limit - 10) // 2)
            value = f"{self.stack_name[:stack_part]}-{logical_id[: limit - 10 - stack_part]}-{digest}"
        return value.lower() if lower else value

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def note(self, logical_id: str, kind: str, what: str) -> None:
        self.notes.append(f"{logical_id} ({kind}): {what}")


Provisioner = Callable[[DeployContext, str, dict[str, Any]], Created]


def _tags_dict(tags: Any) -> dict[str, str]:
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {t["Key"]: str(t["Value"]) for t in tags or []}


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# --- IAM: roles exist so ARNs resolve; moto never enforces policies (checked by cfn-lint and review).
def iam_role(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    name = props.get("RoleName") or ctx.name(lid)
    role = ctx.client("iam").create_role(
        RoleName=name,
        Path=props.get("Path", "/"),
        AssumeRolePolicyDocument=_json(props.get("AssumeRolePolicyDocument", {})),
    )["Role"]
    # Inline and managed policies are not pushed to moto (which is stricter than IAM about Version): read them.
    ctx.note(lid, "AWS::IAM::Role", "role created; its policies are not enforced locally")
    return Created(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})


def accepted(kind: str, what: str) -> Provisioner:
    """A type the sandbox accepts without enforcing (listed and printed, never silent)."""

    def create(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
        ctx.note(lid, kind, what)
        name = props.get("PolicyName") or props.get("Name") or ctx.name(lid)
        return Created(name, {"Arn": ctx.arn(kind.split("::")[1].lower(), name), "Id": name})

    return create


# --- Lambda
def lambda_layer(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    layer = ctx.client("lambda").publish_layer_version(
        LayerName=props.get("LayerName") or ctx.name(lid),
        Content=props["Content"],
        CompatibleRuntimes=props.get("CompatibleRuntimes", []),
    )
    return Created(layer["LayerVersionArn"], {"LayerVersionArn": layer["LayerVersionArn"]})


_FUNCTION_KEYS = (
    "Runtime",
    "Role",
    "Handler",
    "Code",
    "Description",
    "Timeout",
    "MemorySize",
    "Environment",
    "Layers",
    "Architectures",
    "TracingConfig",
    "EphemeralStorage",
    "ReservedConcurrentExecutions",
    "DeadLetterConfig",
    "LoggingConfig",
)


def lambda_function(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    kwargs = {k: props[k] for k in _FUNCTION_KEYS if k in props and k != "ReservedConcurrentExecutions"}
    for key in ("Timeout", "MemorySize"):
        if key in kwargs:
            kwargs[key] = int(kwargs[key])
    name = props.get("FunctionName") or ctx.name(lid)
    fn = ctx.client("lambda").create_function(FunctionName=name, Tags=_tags_dict(props.get("Tags")), **kwargs)
    if "DeadLetterConfig" in props:
        ctx.note(
            lid,
            "AWS::Lambda::Function",
            "DeadLetterConfig recorded; failed async events are not sent locally",
        )
    if "ReservedConcurrentExecutions" in props:
        ctx.client("lambda").put_function_concurrency(
            FunctionName=name, ReservedConcurrentExecutions=int(props["ReservedConcurrentExecutions"])
        )
    return Created(name, {"Arn": fn["FunctionArn"]})


def lambda_permission(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    kwargs = {k: props[k] for k in ("SourceArn", "SourceAccount") if k in props}
    ctx.client("lambda").add_permission(
        FunctionName=props["FunctionName"],
        StatementId=lid,
        Action=props["Action"],
        Principal=props["Principal"],
        **kwargs,
    )
    return Created(lid)


def lambda_version(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    version = ctx.client("lambda").publish_version(FunctionName=props["FunctionName"])
    return Created(version["FunctionArn"], {"Version": version["Version"]})


def lambda_alias(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    alias = ctx.client("lambda").create_alias(
        FunctionName=props["FunctionName"], Name=props["Name"], FunctionVersion=str(props["FunctionVersion"])
    )
    return Created(alias["AliasArn"])


# --- Storage and data
def dynamodb_table(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    name = props.get("TableName") or ctx.name(lid, 255)
    keys = (
        "AttributeDefinitions",
        "KeySchema",
        "BillingMode",
        "ProvisionedThroughput",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "StreamSpecification",
        "SSESpecification",
    )
    kwargs = {k: props[k] for k in keys if k in props}
    if "SSESpecification" in kwargs:
        kwargs["SSESpecification"] = {"Enabled": bool(kwargs["SSESpecification"].get("SSEEnabled", False))}
    if props.get("Tags"):
        kwargs["Tags"] = props["Tags"]
    ddb = ctx.client("dynamodb")
    table = ddb.create_table(TableName=name, **kwargs)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
        ctx.note(lid, "AWS::DynamoDB::Table", "TTL recorded, items are not expired locally")
    pitr = props.get("PointInTimeRecoverySpecification", {})
    if pitr.get("PointInTimeRecoveryEnabled"):
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    return Created(name, {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn")})


def _notification_filter(cfn_filter: dict[str, Any] | None) -> dict[str, Any]:
    if not cfn_filter:
        return {}
    return {"Filter": {"Key": {"FilterRules": cfn_filter.get("S3Key", {}).get("Rules", [])}}}


def _bucket_notifications(ctx: DeployContext, bucket: str, config: dict[str, Any]) -> None:
    api: dict[str, Any] = {
        "LambdaFunctionConfigurations": [
            {
                "LambdaFunctionArn": c["Function"],
                "Events": [c["Event"]],
                **_notification_filter(c.get("Filter")),
            }
            for c in config.get("LambdaConfigurations", [])
        ],
        "TopicConfigurations": [
            {"TopicArn": c["Topic"], "Events": [c["Event"]], **_notification_filter(c.get("Filter"))}
            for c in config.get("TopicConfigurations", [])
        ],
        "QueueConfigurations": [
            {"QueueArn": c["Queue"], "Events": [c["Event"]], **_notification_filter(c.get("Filter"))}
            for c in config.get("QueueConfigurations", [])
        ],
    }
    if config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        api["EventBridgeConfiguration"] = {}
    ctx.client("s3").put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=api)


def _cors_rules(cors: dict[str, Any]) -> list[dict[str, Any]]:
    rules = []
    for rule in cors.get("CorsRules", []):
        converted = {k: v for k, v in rule.items() if k != "MaxAge"}
        if "MaxAge" in rule:
            converted["MaxAgeSeconds"] = int(rule["MaxAge"])
        rules.append(converted)
    return rules


_BUCKET_NOT_ENFORCED = (
    "LifecycleConfiguration",  # stored in moto (so it is checked and readable), objects never expire
    "OwnershipControls",
    "LoggingConfiguration",
    "ObjectLockConfiguration",
    "IntelligentTieringConfigurations",
)


def _lifecycle_rules(config: dict[str, Any]) -> list[dict[str, Any]]:
    """CloudFormation's lifecycle rule shape → S3's API shape (the parts this project's template uses)."""
    rules = []
    for rule in config.get("Rules", []):
        api: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule["Status"]}
        api["Filter"] = {"Prefix": rule.get("Prefix", "")}
        expiration: dict[str, Any] = {}
        if "ExpirationInDays" in rule:
            expiration["Days"] = int(rule["ExpirationInDays"])
        if "ExpiredObjectDeleteMarker" in rule:
            expiration["ExpiredObjectDeleteMarker"] = bool(rule["ExpiredObjectDeleteMarker"])
        if expiration:
            api["Expiration"] = expiration
        if "NoncurrentVersionExpiration" in rule:
            days = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
            api["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
        if "AbortIncompleteMultipartUpload" in rule:
            days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
        rules.append(api)
    return rules


def s3_bucket(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    name = props.get("BucketName") or ctx.name(lid, 63, lower=True)
    s3 = ctx.client("s3")
    s3.create_bucket(Bucket=name)
    if "BucketEncryption" in props:
        # CloudFormation's rule shape differs from the API's only in the name of the default block.
        rules = [
            {
                **{k: v for k, v in rule.items() if k != "ServerSideEncryptionByDefault"},
                "ApplyServerSideEncryptionByDefault": rule.get("ServerSideEncryptionByDefault", {}),
            }
            for rule in props["BucketEncryption"].get("ServerSideEncryptionConfiguration", [])
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    if "CorsConfiguration" in props:
        s3.put_bucket_cors(
            Bucket=name, CORSConfiguration={"CORSRules": _cors_rules(props["CorsConfiguration"])}
        )
    if "LifecycleConfiguration" in props:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": _lifecycle_rules(props["LifecycleConfiguration"])}
        )
    if props.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": props["Tags"]})
    if "NotificationConfiguration" in props:
        _bucket_notifications(ctx, name, props["NotificationConfiguration"])
    for key in _BUCKET_NOT_ENFORCED:
        if key in props:
            ctx.note(lid, "AWS::S3::Bucket", f"{key} accepted, not enforced locally")
    return Created(
        name,
        {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{ctx.region}.amazonaws.com",
        },
    )


def s3_bucket_policy(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    document = props["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else dict(document)
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    # moto evaluates Deny statements and the sandbox speaks plain HTTP: TLS-only denies would block everything.
    kept = [s for s in statements if "aws:SecureTransport" not in json.dumps(s.get("Condition", {}))]
    if kept:
        ctx.client("s3").put_bucket_policy(
            Bucket=props["Bucket"], Policy=json.dumps({**document, "Statement": kept})
        )
    dropped = len(statements) - len(kept)
    ctx.note(
        lid,
        "AWS::S3::BucketPolicy",
        f"not enforced locally ({dropped} aws:SecureTransport statement(s) dropped)",
    )
    return Created(props["Bucket"])


def sns_topic(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    name = props.get("TopicName") or ctx.name(lid, 256)
    attributes = {
        k: str(props[k]).lower() if isinstance(props[k], bool) else str(props[k])
        for k in ("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication")
        if k in props
    }
    sns = ctx.client("sns")
    arn = sns.create_topic(Name=name, Attributes=attributes, Tags=props.get("Tags", []))["TopicArn"]
    for sub in props.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=sub["Protocol"], Endpoint=sub["Endpoint"])
    return Created(arn, {"TopicArn": arn, "TopicName": name})


def sns_subscription(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    attributes = {
        k: _json(props[k]) if k == "FilterPolicy" else str(props[k]).lower()
        for k in ("FilterPolicy", "RawMessageDelivery")
        if k in props
    }
    arn = ctx.client("sns").subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props["Endpoint"],
        Attributes=attributes,
    )["SubscriptionArn"]
    if props["Protocol"] in {"email", "email-json", "sms", "http", "https"}:
        ctx.note(lid, "AWS::SNS::Subscription", f"{props['Protocol']} subscription recorded, nothing is sent")
    return Created(arn)


def sqs_queue(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    fifo = bool(props.get("FifoQueue"))
    name = props.get("QueueName") or ctx.name(lid, 75 if fifo else 80) + (".fifo" if fifo else "")
    skip = {"QueueName", "Tags", "RedrivePolicy", "RedriveAllowPolicy"}
    attributes = {
        k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in props.items() if k not in skip
    }
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = _json(props["RedrivePolicy"])
    sqs = ctx.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = ctx.arn("sqs", name)
    return Created(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def log_group(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    name = props.get("LogGroupName") or f"/aws/sandbox/{ctx.name(lid)}"
    logs = ctx.client("logs")
    logs.create_log_group(logGroupName=name)
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    return Created(name, {"Arn": ctx.arn("logs", f"log-group:{name}:*")})


def secret(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    name = props.get("Name") or ctx.name(lid, 512)
    value = props.get("SecretString")
    if value is None:
        gen = props.get("GenerateSecretString", {})
        value = secrets.token_urlsafe(int(gen.get("PasswordLength", 32)))
        if "SecretStringTemplate" in gen:
            value = json.dumps({**json.loads(gen["SecretStringTemplate"]), gen["GenerateStringKey"]: value})
    arn = ctx.client("secretsmanager").create_secret(Name=name, SecretString=value)["ARN"]
    return Created(arn, {"Id": arn})


def ssm_parameter(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    name = props.get("Name") or ctx.name(lid, 1000)
    ctx.client("ssm").put_parameter(Name=name, Value=str(props["Value"]), Type=props.get("Type", "String"))
    return Created(name, {"Type": props.get("Type", "String"), "Value": props["Value"]})


# --- Events, Step Functions, API Gateway
def event_bus(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    bus = ctx.client("events").create_event_bus(Name=props["Name"])
    return Created(props["Name"], {"Arn": bus["EventBusArn"], "Name": props["Name"]})


def event_rule(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    name = props.get("Name") or ctx.name(lid)
    bus = props.get("EventBusName", "default")
    bus_name = bus.rsplit("/", 1)[-1]
    kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus_name, "State": props.get("State", "ENABLED")}
    if "EventPattern" in props:
        kwargs["EventPattern"] = _json(props["EventPattern"])
    if "ScheduleExpression" in props:
        kwargs["ScheduleExpression"] = props["ScheduleExpression"]
        if not str(props["ScheduleExpression"]).startswith("rate("):
            ctx.note(lid, "AWS::Events::Rule", f"schedule {props['ScheduleExpression']} is NOT fired locally")
    events = ctx.client("events")
    arn = events.put_rule(**kwargs)["RuleArn"]
    if props.get("Targets"):
        events.put_targets(Rule=name, EventBusName=bus_name, Targets=props["Targets"])
    return Created(name if bus_name == "default" else f"{bus_name}|{name}", {"Arn": arn})


def state_machine(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    definition = props.get("DefinitionString")
    if definition is None:
        definition = json.dumps(props["Definition"])
    for key, value in props.get("DefinitionSubstitutions", {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    kwargs: dict[str, Any] = {"type": props.get("StateMachineType", "STANDARD")}
    if "LoggingConfiguration" in props:
        ctx.note(
            lid, "AWS::StepFunctions::StateMachine", "LoggingConfiguration accepted, no logs are written"
        )
    if "TracingConfiguration" in props:
        kwargs["tracingConfiguration"] = {"enabled": bool(props["TracingConfiguration"].get("Enabled"))}
    name = props.get("StateMachineName") or ctx.name(lid, 80)
    sfn = ctx.client("stepfunctions")
    arn = sfn.create_state_machine(name=name, definition=definition, roleArn=props["RoleArn"], **kwargs)[
        "stateMachineArn"
    ]
    return Created(arn, {"Arn": arn, "Name": name})


def rest_api(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    body = props.get("Body")
    if not isinstance(body, dict):
        raise TypeError("only REST APIs defined by an OpenAPI Body are served by the sandbox front")
    name = props.get("Name") or body.get("info", {}).get("title") or ctx.name(lid)
    api = ctx.client("apigateway").create_rest_api(name=str(name))
    ctx.apis[lid] = ApiSpec(lid, api["id"], body)
    return Created(api["id"], {"RootResourceId": api["rootResourceId"]})


def _api_for(ctx: DeployContext, api_id: str) -> ApiSpec:
    for spec in ctx.apis.values():
        if spec.api_id == api_id:
            return spec
    raise ValueError(f"RestApiId {api_id} is not a REST API of this template")


def api_deployment(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    spec = _api_for(ctx, props["RestApiId"])
    # SAM's implicit "Stage" stage of the deployment is not served: the explicit Stage resource is.
    return Created(f"{spec.api_id}-{lid}"[:10])


def api_stage(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    _api_for(ctx, props["RestApiId"]).stages.append(props["StageName"])
    return Created(props["StageName"])


def api_key(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    kwargs = {"value": props["Value"]} if "Value" in props else {}
    key = ctx.client("apigateway").create_api_key(
        name=props.get("Name") or ctx.name(lid), enabled=bool(props.get("Enabled", True)), **kwargs
    )
    ctx.api_keys.append(key["value"])
    return Created(key["id"], {"APIKeyId": key["id"]})


def kms_key(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    key = ctx.client("kms").create_key(Description=props.get("Description", lid))["KeyMetadata"]
    return Created(key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]})


def kms_alias(ctx: DeployContext, lid: str, props: dict[str, Any]) -> Created:
    ctx.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
    return Created(props["AliasName"])


PROVISIONERS: dict[str, Provisioner] = {
    "AWS::IAM::Role": iam_role,
    "AWS::Lambda::LayerVersion": lambda_layer,
    "AWS::Lambda::Function": lambda_function,
    "AWS::Lambda::Permission": lambda_permission,
    "AWS::Lambda::Version": lambda_version,
    "AWS::Lambda::Alias": lambda_alias,
    "AWS::DynamoDB::Table": dynamodb_table,
    "AWS::S3::Bucket": s3_bucket,
    "AWS::S3::BucketPolicy": s3_bucket_policy,
    "AWS::SNS::Topic": sns_topic,
    "AWS::SNS::Subscription": sns_subscription,
    "AWS::SQS::Queue": sqs_queue,
    "AWS::Logs::LogGroup": log_group,
    "AWS::SecretsManager::Secret": secret,
    "AWS::SSM::Parameter": ssm_parameter,
    "AWS::Events::EventBus": event_bus,
    "AWS::Events::Rule": event_rule,
    "AWS::StepFunctions::StateMachine": state_machine,
    "AWS::ApiGateway::RestApi": rest_api,
    "AWS::ApiGateway::Deployment": api_deployment,
    "AWS::ApiGateway::Stage": api_stage,
    "AWS::ApiGateway::ApiKey": api_key,
    "AWS::KMS::Key": kms_key,
    "AWS::KMS::Alias": kms_alias,
    # Accepted, not enforced locally: each is printed at deploy time.
    "AWS::IAM::Policy": accepted("AWS::IAM::Policy", "IAM is not enforced locally"),
    "AWS::IAM::ManagedPolicy": accepted("AWS::IAM::ManagedPolicy", "IAM is not enforced locally"),
    "AWS::SNS::TopicPolicy": accepted("AWS::SNS::TopicPolicy", "resource policy not enforced locally"),
    "AWS::SQS::QueuePolicy": accepted("AWS::SQS::QueuePolicy", "resource policy not enforced locally"),
    "AWS::ApiGateway::Account": accepted("AWS::ApiGateway::Account", "API Gateway logging role, unused"),
    "AWS::ApiGateway::UsagePlan": accepted("AWS::ApiGateway::UsagePlan", "quotas/throttles not enforced"),
    "AWS::ApiGateway::UsagePlanKey": accepted(
        "AWS::ApiGateway::UsagePlanKey", "quotas/throttles not enforced"
    ),
    "AWS::CloudWatch::Alarm": accepted("AWS::CloudWatch::Alarm", "alarms never fire locally"),
    "AWS::Logs::MetricFilter": accepted("AWS::Logs::MetricFilter", "no metrics locally"),
    "AWS::CloudWatch::Dashboard": accepted("AWS::CloudWatch::Dashboard", "no dashboards locally"),
}
