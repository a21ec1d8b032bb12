"""JSON text in, Python out, with one failure mode: `json.JSONDecodeError` (pure, no I/O).

`json.loads` also raises a plain ValueError for an integer of more than 4300 digits and a
RecursionError for deeply nested arrays; callers that map JSONDecodeError to "invalid JSON"
(the API, the prompt-file parser) would otherwise crash on them.
"""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        reason = "nested too deeply"
    except ValueError:  # int-max-str-digits
        reason = "a number has too many digits"
    doc = text if isinstance(text, str) else text.decode("utf-8", "replace")
    raise json.JSONDecodeError(reason, doc, 0) from None
