"""JSON text in, Python out, with one failure mode: `json.JSONDecodeError` (pure, no I/O).

Stricter than `json.loads`, which takes `NaN`, `Infinity` and numbers like `1e999` (infinite as a
float) although they are not JSON, and no store downstream (DynamoDB, EventBridge) takes them either;
and which gives a plain ValueError for an integer of more than 4300 digits and a RecursionError for
deeply nested arrays. Documents nested deeper than MAX_DEPTH levels are refused too: DynamoDB refuses
more than 32 levels, and no request of this project nests at all. Callers map JSONDecodeError to
"invalid JSON" (the API, the prompt-file parser).
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

MAX_DEPTH: Final = 32


class _NotJsonError(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _constant(name: str) -> Any:
    raise _NotJsonError(f"{name} is not a JSON number")


def _number(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotJsonError(f"the number {text[:20]} is out of range")
    return value


def depth(value: Any) -> int:
    """How many objects and arrays nest in `value` (0 for a scalar), without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        pending.extend((child, level + 1) for child in children)
    return deepest


def loads(text: str | bytes) -> Any:
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_number)
    except json.JSONDecodeError:
        raise
    except _NotJsonError as exc:
        reason = exc.reason
    except RecursionError:
        reason = f"nested more than {MAX_DEPTH} levels"
    except ValueError:  # int-max-str-digits
        reason = "a number has too many digits"
    else:
        if depth(value) <= MAX_DEPTH:
            return value
        reason = f"nested more than {MAX_DEPTH} levels"
    doc = text if isinstance(text, str) else text.decode("utf-8", "replace")
    raise json.JSONDecodeError(reason, doc, 0) from None
