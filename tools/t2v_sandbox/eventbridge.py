"""EventBridge delivery to Lambda and Step Functions targets: pattern matching and target input shaping."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

_MISSING = object()
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


# --- Pattern matching (the subset templates use: values, any-of lists, prefix/suffix, exists, anything-but,
# numeric, equals-ignore-case, wildcard, $or).
def matches(pattern: dict[str, Any], event: Any) -> bool:
    for key, rule in pattern.items():
        if key == "$or":
            if not any(matches(sub, event) for sub in rule):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not matches(rule, value):
                return False
        elif not _match_values(rule, value):
            return False
    return True


def _match_values(rules: list[Any], value: Any) -> bool:
    candidates = value if isinstance(value, list) else [value]
    return any(_match_one(rule, candidate, value is _MISSING) for rule in rules for candidate in candidates)


def _numeric(conditions: list[Any], value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    checks: dict[str, Callable[[float, float], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "=": lambda a, b: a == b,
    }
    pairs = zip(conditions[::2], conditions[1::2], strict=True)
    return all(checks[op](float(value), float(bound)) for op, bound in pairs)


def _wildcard(pattern: str, value: Any) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return isinstance(value, str) and re.fullmatch(regex, value) is not None


def _anything_but(spec: Any, value: Any, missing: bool) -> bool:
    if missing:
        return False
    if isinstance(spec, dict) and "prefix" in spec:
        return not (isinstance(value, str) and value.startswith(spec["prefix"]))
    excluded = spec if isinstance(spec, list) else [spec]
    return value not in excluded


def _match_one(rule: Any, value: Any, missing: bool) -> bool:
    if not isinstance(rule, dict):
        return not missing and rule == value
    ((op, arg),) = rule.items()
    if op == "exists":
        return bool(arg) != missing
    if missing:
        return False
    operators: dict[str, Callable[[], bool]] = {
        "prefix": lambda: isinstance(value, str) and value.startswith(arg),
        "suffix": lambda: isinstance(value, str) and value.endswith(arg),
        "equals-ignore-case": lambda: isinstance(value, str) and value.lower() == str(arg).lower(),
        "wildcard": lambda: _wildcard(arg, value),
        "numeric": lambda: _numeric(arg, value),
        "anything-but": lambda: _anything_but(arg, value, missing),
    }
    if op not in operators:
        raise ValueError(f"event pattern operator {op!r} is not supported by the sandbox")
    return operators[op]()


# --- Target input: Input, InputPath, InputTransformer.
def json_path(document: Any, path: str) -> Any:
    """Plain `$.a.b` paths (what InputPath and InputPathsMap use); a missing key gives None."""
    if path in {"$", ""}:
        return document
    current = document
    for part in path.removeprefix("$.").split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def _render(template: str, values: dict[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        value = values.get(match.group(1), _MISSING)
        if value is _MISSING:
            return match.group(0)
        start, end = match.span()
        quoted = template[start - 1 : start] == '"' and template[end : end + 1] == '"'
        if quoted:
            # Inside quotes a string is inserted as its (escaped) text, anything else as JSON text.
            return (
                json.dumps(value)[1:-1] if isinstance(value, str) else json.dumps(value).replace('"', '\\"')
            )
        return json.dumps(value)

    return _PLACEHOLDER.sub(replace, template)


def target_input(target: dict[str, Any], event: dict[str, Any], rule_name: str, rule_arn: str) -> Any:
    """The payload a target receives, as EventBridge shapes it."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        return json_path(event, target["InputPath"])
    transformer = target.get("InputTransformer")
    if not transformer:
        return event
    values = {name: json_path(event, path) for name, path in transformer.get("InputPathsMap", {}).items()}
    values.update(
        {
            "aws.events.event": event,
            "aws.events.event.json": event,
            "aws.events.rule-name": rule_name,
            "aws.events.rule-arn": rule_arn,
            "aws.events.event.ingestion-time": event.get("time"),
        }
    )
    rendered = _render(transformer["InputTemplate"], values)
    try:
        return json.loads(rendered)
    except json.JSONDecodeError:
        # A non-JSON template yields a plain string payload, as on AWS.
        return rendered


def normalise_event(event: dict[str, Any]) -> dict[str, Any]:
    """moto stamps `time` as epoch seconds; AWS sends an ISO-8601 string."""
    stamp = event.get("time")
    if isinstance(stamp, int | float):
        event["time"] = dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event.pop("ingestion-time", None)
    event.setdefault("version", "0")
    return event


class EventDelivery:
    """Delivers a matched event to a Lambda (async invoke) or a state machine (StartExecution)."""

    def __init__(
        self,
        client: Callable[[str], Any],
        submit: Callable[..., None],
        *,
        copies: int = 1,
        on_delivery: Callable[[int], None] | None = None,
    ) -> None:
        self._client = client
        self._submit = submit
        self._copies = max(1, copies)  # >1: at-least-once delivery, as EventBridge may do
        self._on_delivery = on_delivery

    def __call__(self, rule: Any, target: dict[str, Any], event: dict[str, Any]) -> None:
        event = normalise_event(event)
        pattern = rule.event_pattern.get_pattern() if rule.event_pattern else {}
        # A rule without a pattern is a schedule rule: it never matches put events.
        if not pattern or not matches(pattern, event):
            return
        payload = target_input(target, event, rule.name, rule.arn)
        arn = target["Arn"]
        if self._on_delivery is not None:
            self._on_delivery(self._copies)
        for _ in range(self._copies):
            if arn.split(":")[2] == "lambda":
                self._submit(self._invoke_lambda, arn, payload)
            else:
                self._submit(self._start_execution, arn, payload)

    def _invoke_lambda(self, arn: str, payload: Any) -> None:
        self._client("lambda").invoke(FunctionName=arn, InvocationType="Event", Payload=json.dumps(payload))

    def _start_execution(self, arn: str, payload: Any) -> None:
        self._client("stepfunctions").start_execution(
            stateMachineArn=arn, name=f"events-{uuid.uuid4()}", input=json.dumps(payload)
        )
