"""The alarms' metrics, seen emitted: the real template in the sandbox, the functions' logs read for
their CloudWatch embedded metric format (EMF) lines, while the sandbox is made to produce every
signal (a key refused, a create refused for capacity, a forged push, a charged budget, a sweep).

Nothing here makes an alarm fire (the sandbox records alarms and never evaluates them); what is
checked is that each alarm watches a metric that is really emitted, with the same namespace, name and
dimensions, or an AWS metric of a resource the stack really has.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from t2v_sandbox.template import load_template
from t2v_sandbox.user_sandbox import UserSandbox, wait_until

from tests.e2e.sandboxes import emulated_sandbox
from tests.e2e.test_e2e import TEMPLATE
from tests.e2e.test_push import callback_url, ended, start

NAMESPACE = "t2v-e2e-metrics"
Emitted = tuple[str, str, frozenset[tuple[str, str]]]  # namespace, metric, dimensions


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserSandbox]:
    # A non-default namespace (the alarms must follow the parameter), a day budget (its alarm exists
    # only then) and push on (the callback and its alarms exist only then).
    overrides = {"MetricsNamespace": NAMESPACE, "DailyBudgetSeconds": "1000", "PollIntervalSeconds": "1"}
    yield from emulated_sandbox(tmp_path_factory, "metrics-sandbox", overrides, push=True)


def emitted(sb: UserSandbox) -> set[Emitted]:
    """Every metric of every EMF line the functions wrote to their logs."""
    found: set[Emitted] = set()
    for log in (sb.work_dir / "logs").glob("*.log"):
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.startswith('{"_aws"'):
                continue
            document = json.loads(line)
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for names in directive["Dimensions"]:
                    dimensions = frozenset((name, str(document[name])) for name in names)
                    for metric in directive["Metrics"]:
                        found.add((directive["Namespace"], metric["Name"], dimensions))
    return found


def alarms() -> dict[str, dict[str, Any]]:
    resources = load_template(TEMPLATE)["Resources"]
    return {lid: r for lid, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def watched(props: dict[str, Any]) -> Emitted:
    namespace = NAMESPACE if props["Namespace"] == {"Ref": "MetricsNamespace"} else props["Namespace"]
    dimensions = frozenset((d["Name"], str(d["Value"])) for d in props["Dimensions"])
    return namespace, props["MetricName"], dimensions


def test_every_alarm_watches_a_metric_the_sandbox_emits_or_a_resource_it_has(sb: UserSandbox) -> None:
    tag = uuid.uuid4().hex[:6]
    # Given every signal provoked once: a key refused and a create refused for capacity (emulator
    # faults on two prompts), a job that succeeds (the budget charged, an outcome announced), a
    # forged push, and a sweep
    sb.emulator.set_faults(
        {
            "rules": [
                {
                    "kind": "error",
                    "endpoint": "create",
                    "code": "InvalidApiKey",
                    "prompt_contains": f"auth-{tag}",
                },
                {
                    "kind": "error",
                    "endpoint": "create",
                    "code": "Throttling",
                    "prompt_contains": f"full-{tag}",
                    "times": 1,
                },
            ]
        }
    )
    refused_key = start(sb, f"metrics auth-{tag}", "640*360")
    start(sb, f"metrics full-{tag}", "640*360")  # refused once, then queued: CreateRefusals
    succeeded = start(sb, f"metrics fine-{tag}", "640*360")
    forged = httpx.post(
        callback_url(sb),
        json={"id": f"e-{tag}", "data": {"task_id": "t-1", "task_status": "SUCCEEDED"}},
        headers={"x-eventbridge-signature-token": "guess"},
    )
    assert forged.status_code == 401
    assert ended(sb, refused_key)["error_code"] == "InvalidApiKey"
    assert ended(sb, succeeded)["status"] == "SUCCEEDED"
    sb.fire_schedules()  # the sweeper's run (asynchronous, as EventBridge Scheduler invokes it)

    # When the functions' logs are read for EMF lines
    custom = {
        lid: watched(a["Properties"])
        for lid, a in alarms().items()
        if a["Properties"]["Namespace"] == {"Ref": "MetricsNamespace"}
    }
    found = wait_until(
        lambda: (seen := emitted(sb)) >= set(custom.values()) and seen,
        timeout=60,
        what="every alarm's metric emitted",
    )

    # Then each custom alarm's namespace, name and dimensions were emitted exactly so
    missing = {lid: w for lid, w in custom.items() if w not in found}
    assert not missing, f"alarms whose metric no function emitted: {missing}"
    assert len(custom) == 7  # every custom alarm: none left out by a condition (push on, a budget)
    ended_statuses = {dict(d).get("status") for ns, name, d in found if name == "JobsEnded"}
    assert {"SUCCEEDED", "FAILED"} <= ended_statuses  # the dashboard's jobs per status


def test_every_aws_metric_alarm_names_a_resource_the_sandbox_stack_has(sb: UserSandbox) -> None:
    for lid, alarm in alarms().items():
        props = alarm["Properties"]
        if props["Namespace"] == {"Ref": "MetricsNamespace"}:
            continue
        [dimension] = props["Dimensions"]
        value = dimension["Value"]
        target = value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]
        assert sb.physical_id(target), lid
