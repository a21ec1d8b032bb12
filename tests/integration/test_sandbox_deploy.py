"""Template handling of the sandbox: loud failures, intrinsics, conditions, event patterns, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from t2v_sandbox import cli
from t2v_sandbox.deployer import DeployError, check_supported, resolve_parameters
from t2v_sandbox.eventbridge import matches, target_input
from t2v_sandbox.intrinsics import IntrinsicError, Resolver, creation_order
from t2v_sandbox.sandbox import Sandbox, SandboxConfig
from t2v_sandbox.template import Packager, load_template, prepare_sam, translate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sandbox"


def resolver(template: dict[str, Any], params: dict[str, Any] | None = None) -> Resolver:
    pseudo = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::StackName": "s"}
    attrs = {("Fn", "Arn"): "arn:aws:lambda:us-east-1:123456789012:function:f"}
    return Resolver(template, params or {}, pseudo, lambda lid, att: attrs[(lid, att)])


# --- loud failures
def test_unsupported_resource_type_stops_deployment_naming_it(tmp_path: Path) -> None:
    config = SandboxConfig(template=FIXTURE / "bad" / "unsupported.yaml", emulator=False, work_dir=tmp_path)
    with pytest.raises(DeployError, match=r"Mapping \(AWS::Lambda::EventSourceMapping\)"):
        Sandbox(config).start()
    # Given the failure, the sandbox cleaned up: a new one can start in this process.
    with Sandbox(SandboxConfig(template=FIXTURE / "template.yaml", emulator=False, work_dir=tmp_path)) as sb:
        assert sb.physical_id("JobsTable")


def test_check_supported_lists_every_unsupported_resource() -> None:
    resources = {
        "A": {"Type": "AWS::ApiGatewayV2::Api"},
        "B": {"Type": "Custom::Thing"},
        "C": {"Type": "AWS::SNS::Topic"},
    }
    with pytest.raises(DeployError) as info:
        check_supported(resources)
    assert "A (AWS::ApiGatewayV2::Api)" in str(info.value)
    assert "B (Custom::Thing)" in str(info.value)
    assert "C (" not in str(info.value)


def test_circular_dependency_is_named() -> None:
    resources = {
        "A": {"Type": "T", "Properties": {"X": {"Ref": "B"}}},
        "B": {"Type": "T", "Properties": {"X": {"Fn::GetAtt": ["A", "Arn"]}}},
        "C": {"Type": "T"},
    }
    with pytest.raises(IntrinsicError, match="A -> B -> A"):
        creation_order(resources)


def test_parameters_are_checked_like_cloudformation() -> None:
    template = {
        "Parameters": {"Mode": {"Type": "String", "AllowedValues": ["IAM", "API_KEY"], "Default": "IAM"}}
    }
    assert resolve_parameters(template, {}) == {"Mode": "IAM"}
    with pytest.raises(DeployError, match="AllowedValues"):
        resolve_parameters(template, {"Mode": "OPEN"})
    with pytest.raises(DeployError, match="not declared"):
        resolve_parameters(template, {"Other": "x"})


# --- template translation
def test_sam_translation_packages_code_and_inlines_definition() -> None:
    uploads: dict[str, bytes] = {}
    packager = Packager(FIXTURE, "artifacts", uploads.__setitem__)
    sam = prepare_sam(load_template(FIXTURE / "template.yaml"), FIXTURE, packager)
    cfn = translate(sam, {"Stage": "dev"}, "us-east-1")
    worker = cfn["Resources"]["WorkerFunction"]["Properties"]
    assert worker["Code"]["S3Bucket"] == "artifacts"
    assert worker["Code"]["S3Key"] in uploads
    assert {a.source_dir.name for a in packager.artifacts} >= {"worker", "shared"}
    machine = cfn["Resources"]["FlowStateMachine"]["Properties"]
    assert "DefinitionSubstitutions" in machine
    assert cfn["Resources"]["UploadsBucket"]["Properties"]["NotificationConfiguration"][
        "LambdaConfigurations"
    ]


# --- intrinsics
def test_intrinsics_sub_if_join_select_split() -> None:
    template = {"Conditions": {"On": {"Fn::Equals": [{"Ref": "Mode"}, "on"]}}}
    r = resolver(template, {"Mode": "on"})
    assert r.resolve({"Fn::Sub": "${AWS::StackName}-${Fn.Arn}-${!Literal}"}) == (
        "s-arn:aws:lambda:us-east-1:123456789012:function:f-${Literal}"
    )
    assert r.resolve({"Fn::Sub": ["${X}/${Mode}", {"X": {"Ref": "AWS::Region"}}]}) == "us-east-1/on"
    assert r.resolve({"Fn::If": ["On", "yes", {"Ref": "Missing"}]}) == "yes"  # other branch never evaluated
    assert r.resolve({"Fn::Join": ["-", ["a", {"Fn::Select": [1, {"Fn::Split": [",", "x,y"]}]}]]}) == "a-y"
    assert r.resolve({"A": {"Fn::If": ["On", {"Ref": "AWS::NoValue"}, 1]}, "B": 2}) == {"B": 2}


def test_unknown_reference_fails_with_its_name() -> None:
    with pytest.raises(IntrinsicError, match="'Nope'"):
        resolver({}).resolve({"Ref": "Nope"})


# --- EventBridge patterns and input transformation
@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["a"]}, True),
        ({"source": ["b", "a"]}, True),
        ({"source": ["b"]}, False),
        ({"detail": {"kind": [{"prefix": "vi"}]}}, True),
        ({"detail": {"kind": [{"suffix": "eo"}]}}, True),
        ({"detail": {"size": [{"numeric": [">", 1, "<=", 5]}]}}, True),
        ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"detail": {"kind": [{"exists": False}]}}, False),
        ({"detail": {"kind": [{"anything-but": ["video"]}]}}, False),
        ({"detail": {"tags": ["b"]}}, True),
        ({"$or": [{"source": ["x"]}, {"detail-type": ["T"]}]}, True),
    ],
)
def test_event_pattern_matching(pattern: dict[str, Any], expected: bool) -> None:
    event = {"source": "a", "detail-type": "T", "detail": {"kind": "video", "size": 5, "tags": ["a", "b"]}}
    assert matches(pattern, event) is expected


def test_input_transformer_quotes_and_json_values() -> None:
    event = {"source": "s", "detail": {"job": "j1", "n": 3, "obj": {"a": 1}}}
    target = {
        "InputTransformer": {
            "InputPathsMap": {"job": "$.detail.job", "n": "$.detail.n", "obj": "$.detail.obj"},
            "InputTemplate": '{"id": "<job>", "count": <n>, "raw": <obj>, "rule": "<aws.events.rule-name>"}',
        }
    }
    assert target_input(target, event, "r1", "arn") == {"id": "j1", "count": 3, "raw": {"a": 1}, "rule": "r1"}
    assert target_input({"InputPath": "$.detail.obj"}, event, "r", "a") == {"a": 1}
    assert target_input({"Input": json.dumps({"fixed": True})}, event, "r", "a") == {"fixed": True}


# --- CLI
def test_cli_has_sandbox_up_with_options() -> None:
    args = cli.build_parser().parse_args(
        ["sandbox", "up", "--time-scale", "0.1", "--param", "A=1", "--param", "B=x=y", "--no-emulator"]
    )
    assert args.time_scale == 0.1
    assert dict(args.param) == {"A": "1", "B": "x=y"}
    assert args.func.__name__ == "run_up"


# --- DashScope wiring and the real template
def test_emulator_is_started_and_wired_into_parameters_and_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    config = SandboxConfig(template=FIXTURE / "template.yaml", emulator=True, work_dir=tmp_path)
    with Sandbox(config) as sb:
        emulator_url = sb.endpoints["emulator_url"]
        assert emulator_url.startswith("http://127.0.0.1:")
        assert sb.stack is not None
        assert sb.stack.parameters["DashScopeBaseUrl"] == emulator_url
        secret = sb.client("secretsmanager").get_secret_value(
            SecretId=sb.stack.parameters["DashScopeSecretName"]
        )
        assert secret["SecretString"] == "sk-sandbox-local"


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not (ROOT / "template.yaml").exists(), reason="template.yaml not written yet")
def test_real_template_deploys(tmp_path: Path) -> None:
    config = SandboxConfig(template=ROOT / "template.yaml", emulator=True, work_dir=tmp_path)
    with Sandbox(config) as sb:
        assert sb.outputs["StateMachineArn"].startswith("arn:aws:states:")
        assert sb.stack is not None
        assert sb.stack.parameters["DashScopeBaseUrl"] == sb.endpoints["emulator_url"]


# --- template guards (issue 15): what CloudFormation would refuse, the sandbox refuses too
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"InputPrefix": "videos/"},
            "rule PrefixesDoNotOverlap: InputPrefix and OutputPrefix must be different",
        ),
        ({"OutputPrefix": "prompts/sub/"}, "OutputPrefix='prompts/sub/' does not match AllowedPattern"),
        ({"InputPrefix": ""}, "InputPrefix='' does not match AllowedPattern"),
        (
            {"InputImagesPrefix": "prompts/"},
            "rule PrefixesDoNotOverlap: InputImagesPrefix must be another folder than InputPrefix and OutputPrefix",
        ),
        (
            {"InputImagesPrefix": "videos/"},
            "rule PrefixesDoNotOverlap: InputImagesPrefix must be another folder than InputPrefix and OutputPrefix",
        ),
        (
            {"InputImagesPrefix": "inputs/sub/"},
            "InputImagesPrefix='inputs/sub/' does not match AllowedPattern",
        ),
    ],
)
def test_overlapping_or_nested_prefixes_fail_before_anything_is_created(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    config = SandboxConfig(
        template=ROOT / "template.yaml", emulator=False, work_dir=tmp_path, parameter_overrides=overrides
    )
    with pytest.raises(DeployError, match=message.replace("(", r"\(")):
        Sandbox(config).start()


@pytest.mark.parametrize(
    ("stack_name", "push"),
    [("A-Very-Long-Stack-Name-With-Capitals-" + "x" * 90, "Enabled"), ("t2v", "Disabled")],
)
def test_bucket_and_logs_do_not_depend_on_the_stack_name(tmp_path: Path, stack_name: str, push: str) -> None:
    config = SandboxConfig(
        template=ROOT / "template.yaml",
        emulator=False,
        work_dir=tmp_path,
        stack_name=stack_name[:128],
        parameter_overrides={"PushCompletion": push},
    )
    with Sandbox(config) as sb:
        bucket = sb.outputs["OutputBucketName"]
        # A valid S3 name for any stack name: lowercase, at most 63 characters, one per stack.
        assert len(bucket) <= 63
        assert bucket == bucket.lower()
        assert bucket.startswith("t2v-123456789012-us-east-1-")
        lifecycle = sb.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        noncurrent = [r for r in lifecycle if r["ID"] == "ExpireNoncurrentVersions"]
        assert noncurrent[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
        # Every function logs into a log group of the stack (LoggingConfig), with retention; the
        # callback and its group exist only with push on (no empty group when it is off).
        logs = sb.client("logs")
        names = ["Submit", "Status", "Finalize", "Intake", "Api", "Park", "Sweeper", "Batch"]
        if push == "Enabled":
            names.append("Callback")
        else:
            assert {"CallbackFunction", "CallbackLogGroup"}.isdisjoint(sb.stack.resources)
        for name in names:
            group = sb.physical_id(f"{name}LogGroup")
            described = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
            assert described[0]["retentionInDays"] == 30
            function = sb.client("lambda").get_function_configuration(
                FunctionName=sb.physical_id(f"{name}Function")
            )
            assert function["Environment"]["Variables"]["AWS_RETRY_MODE"] == "standard"
        # Every log group of the template is one of these functions' or the state machine's.
        groups = {k for k, r in sb.stack.resources.items() if r.get("Type") == "AWS::Logs::LogGroup"}
        assert groups == {f"{name}LogGroup" for name in names} | {"StateMachineLogGroup"}


def test_every_function_logs_into_a_group_of_its_own_that_exists_exactly_when_it_does() -> None:
    # moto does not echo a function's LoggingConfig, so this reads the template itself
    resources = load_template(ROOT / "template.yaml")["Resources"]
    functions = {k: r for k, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    groups = {k for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert {"SubmitFunction", "ParkFunction", "CallbackFunction", "SweeperFunction"} <= set(functions)
    for lid, function in functions.items():
        group = lid.removesuffix("Function") + "LogGroup"
        assert function["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": group}, lid
        assert resources[group].get("Condition") == function.get("Condition"), group
    assert groups == {f.removesuffix("Function") + "LogGroup" for f in functions} | {"StateMachineLogGroup"}


def test_the_api_has_one_stage_v1_and_no_stray_stage() -> None:
    # Given the real template translated as CloudFormation's SAM transform does it
    packager = Packager(ROOT, "artifacts", lambda key, data: None)
    params = {"InputPrefix": "prompts/", "OutputPrefix": "videos/"}
    cfn = translate(prepare_sam(load_template(ROOT / "template.yaml"), ROOT, packager), params, "us-east-1")
    resources = cfn["Resources"].values()
    # Then the only stage is v1: no deployment creates SAM's implicit stage named "Stage"
    stages = [r["Properties"]["StageName"] for r in resources if r["Type"] == "AWS::ApiGateway::Stage"]
    deployments = [r["Properties"] for r in resources if r["Type"] == "AWS::ApiGateway::Deployment"]
    assert stages == ["v1"]
    assert deployments
    assert all("StageName" not in d for d in deployments)
