"""The alarms and the dashboard in template.yaml against the README's Operating table: the same alarms,
each with the metric, statistic, threshold, period and periods the README says, notifying the
operations topic; every AWS metric is one of a resource in the stack, every custom metric one the
code can emit (tests/e2e/test_metrics.py shows them emitted in the sandbox)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from t2v.signals import Signal

from tests.conftest import ROOT
from tests.unit.test_asl_push import template

TEMPLATE = template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
ALARMS = {lid: r for lid, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
CUSTOM = "MetricsNamespace"  # what the README's table writes for {"Ref": "MetricsNamespace"}


def readme_table() -> dict[str, dict[str, str]]:
    """The rows of the README's Operating table, by alarm name."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Operating\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, dict[str, str]] = {}
    header: list[str] = []
    for line in section.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not header:
            header = cells
            continue
        row = dict(zip(header, cells, strict=True))
        name = re.match(r"`(\w+)`", row["alarm"])
        assert name, line
        rows[name.group(1)] = row
    return rows


ROWS = readme_table()


def namespace(props: dict[str, Any]) -> str:
    ns = props["Namespace"]
    return CUSTOM if ns == {"Ref": "MetricsNamespace"} else str(ns)


def test_the_readme_lists_exactly_the_templates_alarms() -> None:
    assert sorted(ROWS) == sorted(ALARMS)


@pytest.mark.parametrize("lid", sorted(ALARMS))
def test_each_alarm_is_what_the_readme_says(lid: str) -> None:
    props, row = ALARMS[lid]["Properties"], ROWS[lid]
    threshold = re.fullmatch(r"≥ (\d+)", row["threshold"])
    period = re.fullmatch(r"(\d+) s", row["period"])
    assert threshold and period, row

    assert row["namespace"] == f"`{namespace(props)}`"
    assert row["metric"] == f"`{props['MetricName']}`"
    assert row["statistic"] == props["Statistic"]
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["Threshold"] == int(threshold.group(1))
    assert props["Period"] == int(period.group(1))
    assert props["EvaluationPeriods"] == int(row["periods"])
    assert props.get("DatapointsToAlarm", 1) == props["EvaluationPeriods"]  # every period must breach
    assert props["TreatMissingData"] == "notBreaching"
    assert row["why"], "every alarm says why it exists"
    assert props["AlarmDescription"]


@pytest.mark.parametrize("lid", sorted(ALARMS))
def test_each_alarm_notifies_the_operations_topic_not_the_outcome_topic(lid: str) -> None:
    props = ALARMS[lid]["Properties"]
    assert props["AlarmActions"] == [{"Ref": "OperationsTopic"}]
    assert props["OKActions"] == [{"Ref": "OperationsTopic"}]


def _referenced(value: Any) -> str:
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["GetAtt"]).split(".")[0]


AWS_DIMENSION = {  # the AWS metrics' dimension and the resource type it names
    "AWS/Lambda": ("FunctionName", "AWS::Serverless::Function"),
    "AWS/States": ("StateMachineArn", "AWS::Serverless::StateMachine"),
    "AWS/SQS": ("QueueName", "AWS::SQS::Queue"),
}


@pytest.mark.parametrize("lid", sorted(ALARMS))
def test_each_alarm_watches_a_resource_of_the_stack_or_a_signal_of_the_code(lid: str) -> None:
    resource = ALARMS[lid]
    props = resource["Properties"]
    ns = namespace(props)
    if ns == CUSTOM:
        assert props["MetricName"] in {s.value for s in Signal}
        assert props["Dimensions"] == [{"Name": "service", "Value": "t2v"}]
        return
    name, kind = AWS_DIMENSION[ns]
    [dimension] = props["Dimensions"]
    target = _referenced(dimension["Value"])
    assert dimension["Name"] == name
    assert RESOURCES[target]["Type"] == kind
    # A conditional resource's alarm has the same condition (no alarm on a function that is not there).
    assert resource.get("Condition") == RESOURCES[target].get("Condition")


def test_the_functions_publish_in_the_namespace_and_service_the_alarms_watch() -> None:
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    assert env["POWERTOOLS_SERVICE_NAME"] == "t2v"


def test_every_function_has_an_errors_and_a_throttles_alarm() -> None:
    functions = [lid for lid, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"]
    watched = {
        (_referenced(a["Properties"]["Dimensions"][0]["Value"]), a["Properties"]["MetricName"])
        for a in ALARMS.values()
        if a["Properties"]["Namespace"] == "AWS/Lambda"
    }
    assert watched == {(f, m) for f in functions for m in ("Errors", "Throttles")}


def test_every_signal_has_an_alarm_but_the_dashboards_jobs_per_status() -> None:
    alarmed = {a["Properties"]["MetricName"] for a in ALARMS.values() if namespace(a["Properties"]) == CUSTOM}
    assert {s.value for s in Signal} - alarmed == {Signal.JOBS_ENDED.value}


def test_the_dashboard_shows_every_alarms_metric_and_the_jobs_per_status() -> None:
    body_template, variables = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Sub"]
    body = json.loads(body_template)  # valid JSON before substitution too
    rows = [row for widget in body["widgets"] for row in widget["properties"]["metrics"]]
    shown = {(row[0], row[1]) for row in rows}
    for props in (a["Properties"] for a in ALARMS.values()):
        ns = "${MetricsNamespace}" if namespace(props) == CUSTOM else props["Namespace"]
        assert (ns, props["MetricName"]) in shown
    statuses = {row[5] for row in rows if row[1] == "JobsEnded"}
    assert statuses == {"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"}
    assert set(variables) == {"CallbackName", "DeadLetterQueueName"}


def test_the_operations_topic_is_its_own_and_its_email_optional() -> None:
    subscription = RESOURCES["OperationsEmailSubscription"]
    assert subscription["Condition"] == "HasOperationsEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "OperationsTopic"}
    assert TEMPLATE["Parameters"]["OperationsEmail"]["Default"] == ""
    assert "OperationsEmail" in (ROOT / "README.md").read_text(encoding="utf-8")
