"""IAM in template.yaml: each function holds the DynamoDB actions it calls and no more, and the KMS
statements for the encrypted topic name keys the way IAM matches them (never an alias ARN).

moto never enforces IAM, so a green sandbox run proves nothing here: these checks read the template.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest
from t2v_sandbox.template import load_template

from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")
FUNCTIONS = {
    lid: res["Properties"]
    for lid, res in TEMPLATE["Resources"].items()
    if res["Type"] == "AWS::Serverless::Function"
}
ADAPTERS = ROOT / "layers" / "shared" / "t2v" / "adapters"

# Adapters no function builds yet, so no function is granted what they call. (The capacity governor's
# transactions are Update actions only: IAM authorizes each as UpdateItem.)
NOT_WIRED: frozenset[str] = frozenset()

# What each function's code path calls on the jobs table (see t2v.wiring and t2v.usecases):
# Query only where jobs are listed (the API) or lost creates are reconciled (submit's `_rivals`).
NEEDS: dict[str, dict[str, set[str]]] = {
    # A batch line's create claim is one transaction with a check that its batch still runs.
    "SubmitFunction": {
        "table": {"GetItem", "PutItem", "UpdateItem", "ConditionCheckItem"},
        "index": {"Query"},
    },
    # A task adopted without proof that shows another request is released and the job's own created.
    "StatusFunction": {"table": {"GetItem", "PutItem", "UpdateItem"}, "index": {"Query"}},
    # An ended job frees its capacity lease and admits the next queued jobs (the by_queue index).
    "FinalizeFunction": {"table": {"GetItem", "PutItem", "UpdateItem"}, "index": {"Query"}},
    "IntakeFunction": {"table": {"GetItem", "PutItem", "UpdateItem"}, "index": set()},
    # A batch's jobs and its lines in flight are read by id, 100 at a time (BatchGetItem).
    "ApiFunction": {"table": {"GetItem", "PutItem", "UpdateItem", "BatchGetItem"}, "index": {"Query"}},
    # The batch steps: the batch, its lines' jobs (recorded, read 100 at a time), the budget, the cap.
    "BatchFunction": {"table": {"GetItem", "PutItem", "UpdateItem", "BatchGetItem"}, "index": set()},
    # The sweeper reads and ends jobs it finds by querying; it never records a new one.
    "SweeperFunction": {"table": {"GetItem", "UpdateItem"}, "index": {"Query"}},
    # Push completion: park stores the wait's token; the callback finds the task's owner, records the push.
    "ParkFunction": {"table": {"UpdateItem"}, "index": set()},
    "CallbackFunction": {"table": {"GetItem", "UpdateItem"}, "index": set()},
}


def statements(props: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in props.get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            found.extend(policy["Statement"])
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else list(value)


def resources(statement: dict[str, Any]) -> list[Any]:
    value = statement["Resource"]
    return value if isinstance(value, list) else [value]


def text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def table_calls() -> set[str]:
    """Every DynamoDB operation the adapters call (`self._table.<op>(...)`), as IAM names it."""
    calls: set[str] = set()
    for path in ADAPTERS.glob("*.py"):
        if path.name in NOT_WIRED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "_table"
                and node.attr != "meta"  # the client's transact_write_items: Update items, as UpdateItem
            ):
                calls.add("".join(part.title() for part in node.attr.split("_")))
        text = path.read_text(encoding="utf-8")
        # Through the table's client: BatchGetItem (a batch's jobs), and a transaction's ConditionCheck
        # item (a batch line's create claim), which IAM authorizes as ConditionCheckItem.
        if "client.batch_get_item(" in text:
            calls.add("BatchGetItem")
        if '"ConditionCheck":' in text:
            calls.add("ConditionCheckItem")
    return calls


def test_the_table_actions_granted_are_the_ones_the_code_calls() -> None:
    granted = set().union(*(need["table"] | need["index"] for need in NEEDS.values()))
    assert granted == table_calls()


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_no_function_holds_a_sam_dynamodb_policy_template(function: str) -> None:
    templates = [next(iter(p)) for p in FUNCTIONS[function].get("Policies", []) if isinstance(p, dict)]
    assert not [name for name in templates if name.startswith("DynamoDB")], templates


@pytest.mark.parametrize("function", sorted(NEEDS))
def test_each_function_holds_exactly_the_table_actions_it_calls(function: str) -> None:
    granted: dict[str, set[str]] = {"table": set(), "index": set()}
    for statement in statements(FUNCTIONS[function]):
        dynamo = {a.removeprefix("dynamodb:") for a in actions(statement) if a.startswith("dynamodb:")}
        if not dynamo:
            continue
        assert statement["Effect"] == "Allow"
        for resource in resources(statement):
            where = text(resource)
            assert "JobsTable" in where, f"{function}: {where} is not the jobs table"
            assert "*" not in where.replace("${JobsTable.Arn}", ""), f"{function}: wildcard in {where}"
            granted["index" if "/index/" in where else "table"] |= dynamo
    assert granted == NEEDS[function]


def test_only_the_listing_index_is_queried() -> None:
    indexes = {
        i["IndexName"] for i in TEMPLATE["Resources"]["JobsTable"]["Properties"]["GlobalSecondaryIndexes"]
    }
    for function in NEEDS:
        for statement in statements(FUNCTIONS[function]):
            for resource in resources(statement):
                named = re.findall(r"/index/([^\"/]+)", text(resource))
                assert set(named) <= indexes, (function, named)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_kms_statements_name_keys_never_aliases(function: str) -> None:
    # IAM matches key use (GenerateDataKey, Decrypt) against key ARNs only: a statement whose Resource
    # is an alias ARN grants nothing. The AWS managed key behind alias/aws/sns is named by condition.
    for statement in statements(FUNCTIONS[function]):
        if not any(a.startswith("kms:") for a in actions(statement)):
            continue
        assert all(":alias/" not in text(r) for r in resources(statement)), statement
        assert all(text(r).endswith(':key/*"}') for r in resources(statement)), statement
        condition = statement["Condition"]
        assert condition["ForAnyValue:StringEquals"]["kms:ResourceAliases"] == "alias/aws/sns"
        assert "sns.${AWS::Region}.amazonaws.com" in text(condition["StringEquals"]["kms:ViaService"])


def test_every_publisher_to_the_encrypted_topic_may_use_its_key() -> None:
    topic = TEMPLATE["Resources"]["OutcomeTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == "alias/aws/sns"
    for function, props in FUNCTIONS.items():
        publishes = any(
            "SNSPublishMessagePolicy" in p for p in props.get("Policies", []) if isinstance(p, dict)
        )
        uses_key = any({"kms:GenerateDataKey", "kms:Decrypt"} <= set(actions(s)) for s in statements(props))
        assert publishes == uses_key, function


def test_no_function_invokes_a_function() -> None:
    # Intake no longer hands the rest of a prompt file on to itself: a .jsonl is a batch, run by its
    # state machine's Distributed Map (issue 24). No function may invoke any function.
    for function, props in FUNCTIONS.items():
        invokes = [s for s in statements(props) if "lambda:InvokeFunction" in actions(s)]
        assert not invokes, function
