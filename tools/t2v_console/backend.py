"""What the console does on the user's behalf: signed API calls and prompt-file uploads.

Everything that needs credentials happens here, in the console's own process; the pages only
ever see job views (whose video URLs are the API's presigned ones) and error messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from t2v.jobs import TERMINAL as JOB_TERMINAL
from t2v.jobs import JobStatus
from t2v.request import DURATIONS, SIZES
from t2v_client import ApiClient, ApiResponse, CliError, Place, Target

# The console's upload rules are `t2v upload`'s; UploadError and upload_key stay importable here.
from t2v_client.uploads import Uploaded, UploadError, upload_key, upload_prompt_file

STATUSES: Final = tuple(status.value for status in JobStatus)
TERMINAL: Final = frozenset(status.value for status in JOB_TERMINAL)


@dataclass(frozen=True)
class SizeChoice:
    size: str
    tier: str
    aspect: str
    durations: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"{self.size.replace('*', '×')}  {self.tier} {self.aspect}"


SIZE_CHOICES: Final = tuple(
    SizeChoice(spec.size, spec.tier, spec.aspect, DURATIONS[spec.tier]) for spec in SIZES.values()
)


__all__ = ["ConsoleBackend", "UploadError", "Uploaded", "upload_key"]


class ConsoleBackend:
    """The API (signed with the place's credentials) and the stack's prompt bucket.

    In the sandbox, `acting_as(name)` is the same console signing as another of its identities
    (each request picks one); the places are made once per identity and kept.
    """

    def __init__(
        self,
        place: Place,
        *,
        client_factory: Callable[[Target], ApiClient] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.place = place
        self._client_factory = client_factory or ApiClient
        self._clock = clock
        # A finished job's video by job id: shared by every identity, each of which only asks for
        # the jobs its own listing shows.
        self._videos: dict[str, tuple[float, dict[str, Any]]] = {}
        self._as: dict[str, ConsoleBackend] = {}

    @property
    def where(self) -> str:
        return "sandbox" if self.place.sandbox else self.place.target.api_url

    @property
    def identity(self) -> str | None:
        """The sandbox identity this backend signs as (None on AWS)."""
        return self.place.target.identity

    @property
    def identities(self) -> tuple[str, ...]:
        """The names `acting_as` takes (none on AWS)."""
        return tuple(self.place.identities)

    def acting_as(self, name: str | None) -> ConsoleBackend:
        """This console signing as the sandbox identity `name` (None or its own: itself)."""
        if name is None or name == self.identity:
            return self
        if name not in self._as:
            other = ConsoleBackend(
                self.place.as_identity(name), client_factory=self._client_factory, clock=self._clock
            )
            other._videos = self._videos
            self._as[name] = other
        return self._as[name]

    def call(self, method: str, path: str, **kwargs: Any) -> ApiResponse:
        with self._client_factory(self.place.target) as client:
            return client.call(method, path, **kwargs)

    def budget_line(self) -> str | None:
        """The header's word on the caller's day (GET /usage); None when the API cannot say."""
        try:
            answer = self.call("GET", "/usage")
        except CliError:
            return None
        body = answer.body if answer.status == 200 and isinstance(answer.body, dict) else None
        if body is None:
            return None
        left = body.get("left_seconds")
        if left is None:
            return "budget: no cap today"
        return f"budget: {left} s left today (renews {str(body.get('renews_at', ''))[11:16]} UTC)"

    def list_jobs(self, *, status: str | None, limit: int = 50, cursor: str | None = None) -> ApiResponse:
        """A page of jobs; SUCCEEDED ones carry their `video` (the API's presigned URL) for the gallery."""
        answer = self.call("GET", "/videos", query={"status": status, "limit": limit, "cursor": cursor})
        if answer.status == 200 and isinstance(answer.body, dict):
            for job in answer.body.get("items") or []:
                if job.get("status") == "SUCCEEDED" and not job.get("video"):
                    job["video"] = self._video(str(job.get("job_id")))
        return answer

    def _video(self, job_id: str) -> dict[str, Any] | None:
        """A finished job's video view, cached for two thirds of its URL's life (it never changes)."""
        now = self._clock()
        cached = self._videos.get(job_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        answer = self.get_job(job_id)
        video = answer.body.get("video") if answer.status == 200 and isinstance(answer.body, dict) else None
        if isinstance(video, dict):
            self._videos[job_id] = (now + 2 / 3 * float(video.get("expires_in") or 60), video)
            return video
        return None

    def get_job(self, job_id: str) -> ApiResponse:
        return self.call("GET", f"/videos/{job_id}")

    def submit(self, body: dict[str, Any]) -> ApiResponse:
        return self.call("POST", "/videos", json_body=body)

    def cancel(self, job_id: str) -> ApiResponse:
        return self.call("DELETE", f"/videos/{job_id}")

    def upload(self, filename: str, data: bytes) -> Uploaded:
        return upload_prompt_file(self.place, filename, data)
