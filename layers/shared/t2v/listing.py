"""What a listing of jobs asks for (GET /videos): a status, a date range, prompt words, an order.
Pure domain: parsed and checked here, each refusal naming its query parameter; the repository turns
a `JobListing` into one DynamoDB query.

The date range is the indexes' sort key (`created_at`), so it narrows what is read. A status and
prompt words can only filter what is read: a listing with them reads on page after page, up to
`SEARCH_BOUND` jobs per request, and says how many it examined and whether that was all of the range
(`next_cursor` searches on).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Final, NamedTuple

from t2v.jobs import JobRecord, JobStatus
from t2v.request import FieldError, InvalidRequestError
from t2v.times import iso

MAX_QUERY_CHARS: Final = 200
MAX_QUERY_WORDS: Final = 5
# A filtered listing examines at most this many jobs per request, this many per read.
SEARCH_BOUND: Final = 1000
FILTERED_READ: Final = 100
MAX_SEARCH_TEXT_CHARS: Final = 2048  # what a job keeps of its prompt to search in (the prompt's cap)


SINCE_DOC: Final = "created at or after: ISO 8601, a date (00:00 UTC) or a time (UTC unless it has an offset)"
UNTIL_DOC: Final = "created before: ISO 8601, as `since`; after `since`"
Q_DOC: Final = (
    f"prompt words, each contained in the prompt (any case); up to {MAX_QUERY_WORDS} words. A filter: "
    f"one request examines at most {SEARCH_BOUND} jobs and says so in `search`"
)


class Order(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"


@dataclass(frozen=True)
class JobListing:
    status: JobStatus | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    words: tuple[str, ...] = ()  # each in the prompt, case-insensitively
    order: Order = Order.NEWEST

    @property
    def filtered(self) -> bool:
        """Whether pages may come back sparse: a status or words filter what the index reads."""
        return self.status is not None or bool(self.words)

    def created_range(self) -> tuple[str | None, str | None]:
        """The range of `created_at`, both ends inclusive, in the records' time format."""
        last = None if self.until is None else iso(self.until - timedelta(milliseconds=1))
        return (None if self.since is None else iso(self.since)), last


class JobsRead(NamedTuple):
    """One read of a listing: the matching jobs, where to read on (None: the range is done), and
    how many jobs were examined for them."""

    jobs: list[JobRecord]
    next_cursor: str | None
    examined: int


def parse_listing(
    *,
    status: JobStatus | None = None,
    since: str | None = None,
    until: str | None = None,
    q: str | None = None,
    order: str | None = None,
) -> JobListing:
    errors: list[FieldError] = []
    start = _moment("since", since, errors)
    end = _moment("until", until, errors)
    if start is not None and end is not None and end <= start:
        errors.append(FieldError("until", f"must be after since ({iso(start)}), got {iso(end)}"))
    words = _words(q, errors)
    try:
        sort = Order(order or Order.NEWEST)
    except ValueError:
        errors.append(FieldError("order", f"must be newest or oldest, got {order!r}"))
        sort = Order.NEWEST
    if errors:
        raise InvalidRequestError(errors)
    return JobListing(status=status, since=start, until=end, words=words, order=sort)


def _moment(field: str, text: str | None, errors: list[FieldError]) -> datetime | None:
    """ISO 8601: a date (its 00:00 UTC) or a date and time (UTC unless it names an offset)."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time.min, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        errors.append(
            FieldError(
                field,
                f"must be an ISO 8601 date or time, e.g. 2026-12-01 or 2026-12-01T08:00:00Z, got {text[:40]!r}",
            )
        )
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _words(q: str | None, errors: list[FieldError]) -> tuple[str, ...]:
    if q is None:
        return ()
    if len(q) > MAX_QUERY_CHARS:
        errors.append(FieldError("q", f"at most {MAX_QUERY_CHARS} characters, got {len(q)}"))
        return ()
    words = tuple(dict.fromkeys(search_text(w) for w in q.split()))
    if not words:
        errors.append(FieldError("q", "needs at least one word"))
    elif len(words) > MAX_QUERY_WORDS:
        errors.append(FieldError("q", f"at most {MAX_QUERY_WORDS} words, got {len(words)}"))
    return words


def search_text(prompt: str) -> str:
    """What a prompt is searched as: lower case (a word matches whatever its case)."""
    return prompt.lower()[:MAX_SEARCH_TEXT_CHARS]


def search_note(*, examined: int, more: bool, full: bool) -> str:
    """What a filtered listing says of what it read: all of the range, a full page, or its bound."""
    if not more:
        return f"examined {examined} jobs: all in the range"
    if full:
        return f"examined {examined} jobs to fill the page; next_cursor reads on"
    return (
        f"examined {examined} jobs, the bound of one request ({SEARCH_BOUND}), and found fewer "
        "than the limit; next_cursor searches on"
    )
