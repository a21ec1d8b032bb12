"""Create a translated CloudFormation template resource by resource against moto, as CloudFormation would."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from t2v_sandbox.intrinsics import IntrinsicError, Resolver, creation_order
from t2v_sandbox.provisioners import PROVISIONERS, ApiSpec, Created, DeployContext
from t2v_sandbox.template import TemplateError


class DeployError(TemplateError):
    """Deployment stopped; the message names the logical id and type that could not be honoured."""


@dataclass
class Stack:
    """The deployed stack: physical ids, attributes, outputs, notes about what is not enforced."""

    name: str
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    apis: dict[str, ApiSpec] = field(default_factory=dict)
    api_keys: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)


def resolve_parameters(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Defaults plus overrides, checked against AllowedValues/AllowedPattern like CloudFormation does."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise DeployError(f"parameter overrides not declared by the template: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            value: Any = str(overrides[name])
        elif "Default" in spec:
            value = str(spec["Default"]) if not isinstance(spec["Default"], list) else spec["Default"]
        else:
            raise DeployError(f"parameter {name} has no Default: pass it with --param {name}=VALUE")
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            raise DeployError(f"parameter {name}={value!r} not in AllowedValues {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern and isinstance(value, str) and not re.fullmatch(pattern, value):
            raise DeployError(f"parameter {name}={value!r} does not match AllowedPattern {pattern}")
        if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
            value = [v.strip() for v in value.split(",")] if value else []
        values[name] = value
    return values


def check_supported(resources: dict[str, dict[str, Any]]) -> None:
    """Fail before creating anything if a resource type cannot be honoured locally."""
    unsupported = [
        f"{lid} ({res.get('Type')})" for lid, res in resources.items() if res.get("Type") not in PROVISIONERS
    ]
    if unsupported:
        raise DeployError(
            "the sandbox cannot deploy these resources (type not supported locally): "
            + ", ".join(unsupported)
        )


class Deployer:
    def __init__(self, ctx: DeployContext, template: dict[str, Any], parameters: dict[str, Any]) -> None:
        self.ctx = ctx
        self.template = template
        self.created: dict[str, Created] = {}
        pseudo = {
            "AWS::Region": ctx.region,
            "AWS::AccountId": ctx.account,
            "AWS::Partition": "aws",
            "AWS::StackName": ctx.stack_name,
            # Shaped like CloudFormation's (…:stack/NAME/UUID), the UUID stable per stack name.
            "AWS::StackId": ctx.arn(
                "cloudformation", f"stack/{ctx.stack_name}/{uuid.uuid5(uuid.NAMESPACE_URL, ctx.stack_name)}"
            ),
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        self.resolver = Resolver(template, parameters, pseudo, self._get_att)
        self.stack = Stack(ctx.stack_name, parameters=parameters)

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.created:
            raise IntrinsicError(f"Fn::GetAtt {logical_id}.{attribute}: resource not created")
        attrs = self.created[logical_id].attrs
        if attribute not in attrs:
            raise IntrinsicError(
                f"Fn::GetAtt {logical_id}.{attribute}: attribute not available in the sandbox"
            )
        return attrs[attribute]

    def _active_resources(self) -> dict[str, dict[str, Any]]:
        active = {}
        for lid, res in self.template.get("Resources", {}).items():
            try:
                included = "Condition" not in res or self.resolver.condition(res["Condition"])
            except IntrinsicError as exc:
                raise DeployError(f"{lid}: {exc}") from exc
            if included:
                active[lid] = res
        return active

    def check_rules(self) -> None:
        """The template's Rules, as CloudFormation checks them: before anything is created."""
        for name, rule in self.template.get("Rules", {}).items():
            try:
                if "RuleCondition" in rule and not self.resolver.resolve(rule["RuleCondition"]):
                    continue
                for assertion in rule.get("Assertions", []):
                    if not self.resolver.resolve(assertion["Assert"]):
                        raise DeployError(
                            f"rule {name}: {assertion.get('AssertDescription', 'assertion failed')}"
                        )
            except IntrinsicError as exc:
                raise DeployError(f"rule {name}: {exc}") from exc

    def deploy(self) -> Stack:
        self.check_rules()
        resources = self._active_resources()
        check_supported(resources)
        try:
            order = creation_order(resources)
        except IntrinsicError as exc:
            raise DeployError(str(exc)) from exc
        for lid in order:
            self._create(lid, resources[lid])
        self._outputs()
        self.stack.notes = self.ctx.notes
        self.stack.apis = self.ctx.apis
        self.stack.api_keys = self.ctx.api_keys
        return self.stack

    def _create(self, lid: str, res: dict[str, Any]) -> None:
        kind = res["Type"]
        try:
            props = self.resolver.resolve(res.get("Properties", {}))
            created = PROVISIONERS[kind](self.ctx, lid, props)
        except Exception as exc:
            raise DeployError(f"{lid} ({kind}): {type(exc).__name__}: {exc}") from exc
        self.created[lid] = created
        self.resolver.refs[lid] = created.ref
        self.stack.resources[lid] = {"Type": kind, "PhysicalResourceId": created.ref, **created.attrs}

    def _outputs(self) -> None:
        for name, output in self.template.get("Outputs", {}).items():
            try:
                if "Condition" in output and not self.resolver.condition(output["Condition"]):
                    continue
                self.stack.outputs[name] = self.resolver.resolve(output["Value"])
            except IntrinsicError as exc:
                raise DeployError(f"output {name}: {exc}") from exc
