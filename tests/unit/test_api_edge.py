"""The API's edge: a handler that leaves the use cases and the error mapping to it, one mapping by class."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime

import pytest
from t2v.api.errors import HTTP_ERRORS, error_answer
from t2v.errors import CreateInProgressError, JobNotFoundError, NotCancelableError, TerminalProviderError
from t2v.request import FieldError, InvalidRequestError
from t2v.usecases.videos import DailyBudgetError

from tests.conftest import ROOT


def test_the_handler_leaves_use_cases_and_error_mapping_to_the_api() -> None:
    tree = ast.parse((ROOT / "functions" / "api" / "app.py").read_text(encoding="utf-8"))
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}

    assert {m for m in modules if m and m.startswith(("t2v.usecases", "t2v.errors"))} == set()


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        # Messages that name another error's situation change nothing: the class decides
        (JobNotFoundError("already ended; conflict"), 404),
        (NotCancelableError("no job x"), 409),
        (CreateInProgressError("not found"), 409),
        (InvalidRequestError([FieldError("size", "conflict")]), 400),
        (TerminalProviderError("unavailable, retry", provider_code="Throttling"), 502),
    ],
)
def test_an_error_is_answered_by_its_class_never_its_message(exc: Exception, status: int) -> None:
    assert error_answer(exc, method="GET", path="/videos/x").status == status


def test_the_budget_refusal_is_429_with_retry_after_and_its_field() -> None:
    answer = error_answer(
        DailyBudgetError(
            budget="caller",
            seconds=5,
            left=4,
            cap=12,
            renews_at=datetime(2026, 2, 4, tzinfo=UTC),
            retry_after=3600,
        ),
        method="POST",
        path="/videos",
    )
    assert (answer.status, answer.headers) == (429, {"Retry-After": "3600"})
    assert answer.error["code"] == "BudgetExceeded"
    assert [f["field"] for f in answer.error["fields"]] == ["duration"]
    assert json.loads(answer.body) == {"error": answer.error}


def test_an_untyped_error_is_a_500_that_shows_nothing_of_it() -> None:
    answer = error_answer(RuntimeError("secret internals"), method="GET", path="/")
    assert (answer.status, answer.unexpected) == (500, True)
    assert answer.error == {"code": "InternalError", "message": "internal error"}


def test_a_typed_error_is_mapped_before_any_of_its_bases() -> None:
    # The first matching entry wins: a subclass listed after its base would never be reached.
    classes = [cls for cls, _, _ in HTTP_ERRORS]
    for n, cls in enumerate(classes):
        assert not [base for base in classes[:n] if issubclass(cls, base)], cls
