"""What the console does on the user's behalf: signed API calls and prompt-file uploads.

Everything that needs credentials happens here, in the console's own process; the pages only
ever see job views (whose video URLs are the API's presigned ones) and error messages.

A sandbox restarted under a running console listens on new ports: the console re-reads the
sandbox's endpoints file whenever it changes (`PlaceSource`), so it follows the sandbox instead of
failing for good. Every API call times out within a few seconds, so a hung API shows as such.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
from botocore.exceptions import BotoCoreError, ClientError
from t2v.jobs import TERMINAL as JOB_TERMINAL
from t2v.jobs import JobStatus
from t2v.request import DURATIONS, SIZES
from t2v_client import ApiClient, ApiResponse, CliError, ExitCode, Place, Target, sandbox_place
from t2v_client.batches import batch_body, upload_batch_file
from t2v_client.images import UploadedImage, image_prefix, upload_image
from t2v_client.models import Catalog, ImageLimits, ModelsError, parse_catalog, sniff

# The console's upload rules are `t2v upload`'s; UploadError and upload_key stay importable here.
from t2v_client.uploads import Uploaded, UploadError, upload_key, upload_prompt_file

STATUSES: Final = tuple(status.value for status in JobStatus)
TERMINAL: Final = frozenset(status.value for status in JOB_TERMINAL)
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")
# A console call that takes longer than this is shown as the API not answering (the page says so and
# retries): a hung API must not leave a page loading for half a minute.
API_TIMEOUT_SECONDS: Final = 5.0
# GET /v1/models changes only with a deployment: asked again after this long.
MODELS_TTL_SECONDS: Final = 60.0
# A job's image shown as a thumbnail is read whole; larger objects are not shown.
MAX_THUMBNAIL_SOURCE_BYTES: Final = 25 * 1024 * 1024
SHOWN_IMAGE_TYPES: Final = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
# Statuses whose cancel can work while the provider task has not started running.
CANCELLABLE_STATUSES: Final = frozenset({"ACCEPTED", "WAITING", "SUBMITTED", "PENDING"})


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


def error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code")) if isinstance(error, dict) and error.get("code") else None


def cancellable(job: dict[str, Any]) -> bool:
    """Whether a Cancel can work: the API's own `cancellable` when it says, else derived from the view
    (a status before the provider runs the task, and no sign that the task is running)."""
    said = job.get("cancellable")
    if isinstance(said, bool):
        return said
    phase = (job.get("progress") or {}).get("phase")
    return job.get("status") in CANCELLABLE_STATUSES and phase not in {"running", "downloading", "done"}


def cost_line(job: dict[str, Any]) -> str:
    """The job's cost in billed seconds: what the API or the provider says, else what was asked for."""
    for key in ("billed_seconds", "cost_seconds"):
        if isinstance(job.get(key), int):
            return f"{job[key]} s billed"
    usage: dict[str, Any] = job["usage"] if isinstance(job.get("usage"), dict) else {}
    billed = usage.get("duration") or usage.get("video_duration")
    if isinstance(billed, int | float) and not isinstance(billed, bool):
        return f"{billed:g} s billed (the provider's usage)"
    asked = (job.get("request") or {}).get("duration")
    return f"{asked} s (as requested; billed per second)" if asked else "-"


def idempotency_key(nonce: str, body: dict[str, Any]) -> str:
    """One key per form and request: sending the same form again (an answer lost to a timeout) makes
    no second video, and a changed request is a new one."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False)
    return "console-" + hashlib.sha256(f"{nonce}\n{canonical}".encode()).hexdigest()[:40]


def page_items(body: Any) -> list[dict[str, Any]]:
    """A listing's jobs, whichever name the API gives the list (`items`, or `videos`)."""
    if not isinstance(body, dict):
        return []
    found = body.get("items")
    if found is None:
        found = body.get("videos")
    return [job for job in found or [] if isinstance(job, dict)]


class PlaceSource:
    """Where the stack is, for each identity; for the sandbox, re-read whenever its endpoints file
    changes (a restarted sandbox listens on new random ports and has new buckets' URLs)."""

    def __init__(self, place: Place, endpoints_file: Path | None = None) -> None:
        self._place = place
        self._file = endpoints_file
        self._stamp = self._stat()
        self._by_identity: dict[str, Place] = {}
        self._lock = threading.Lock()
        self.generation = 0  # bumped by each re-read: what was cached from the old place is stale

    def _stat(self) -> tuple[int, int, int] | None:
        if self._file is None:
            return None
        try:
            info = self._file.stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def refresh(self) -> bool:
        """Re-read the endpoints file if it changed since; True when the place moved."""
        stamp = self._stat()
        if self._file is None or stamp is None or stamp == self._stamp:
            return False
        with self._lock:
            if stamp == self._stamp:
                return False
            try:
                fresh = sandbox_place(self._file, self._place.target.identity)
            except CliError:
                return False  # half written, or not a sandbox's: keep the place we have
            moved = (
                fresh.target.api_url != self._place.target.api_url or fresh.endpoints != self._place.endpoints
            )
            self._place, self._stamp = fresh, stamp
            if moved:
                self._by_identity = {}
                self.generation += 1
            return moved

    def place(self, identity: str | None) -> Place:
        self.refresh()
        base = self._place
        if identity is None or identity == base.target.identity:
            return base
        with self._lock:
            if identity not in self._by_identity:
                self._by_identity[identity] = base.as_identity(identity)
            return self._by_identity[identity]


def _default_client(target: Target) -> ApiClient:
    return ApiClient(target, timeout=API_TIMEOUT_SECONDS)


class ConsoleBackend:
    """The API (signed with the place's credentials) and the stack's prompt bucket.

    In the sandbox, `acting_as(name)` is the same console signing as another of its identities
    (each request picks one); all share one `PlaceSource`, which follows a restarted sandbox.
    """

    def __init__(
        self,
        place: Place,
        *,
        client_factory: Callable[[Target], ApiClient] | None = None,
        clock: Callable[[], float] = time.monotonic,
        endpoints_file: Path | None = None,
        source: PlaceSource | None = None,
        identity: str | None = None,
        video_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._source = source or PlaceSource(place, endpoints_file if place.sandbox else None)
        self._identity = identity
        self._client_factory = client_factory or _default_client
        self._clock = clock
        self._video_transport = video_transport  # where presigned URLs are fetched (tests: a fake)
        # A finished job's video by job id: shared by every identity, each of which only asks for
        # the jobs its own listing shows; emptied when the sandbox moves (its URLs went with it).
        self._videos: dict[str, tuple[float, dict[str, Any]]] = {}
        self._videos_generation = 0
        self._as: dict[str, ConsoleBackend] = {}
        # Jobs whose cancel the API refused because the task already runs: no Cancel offered again.
        self._refused_cancel: set[str] = set()
        # GET /v1/models: (until, generation, catalog or None for an API without it), shared by all.
        self._models: list[tuple[float, int, Catalog | None]] = []

    @property
    def place(self) -> Place:
        return self._source.place(self._identity)

    @property
    def where(self) -> str:
        place = self.place
        return "sandbox" if place.sandbox else place.target.api_url

    @property
    def api_url(self) -> str:
        return self.place.target.api_url

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
                self.place,
                client_factory=self._client_factory,
                clock=self._clock,
                source=self._source,
                identity=name,
                video_transport=self._video_transport,
            )
            other._videos = self._videos
            other._refused_cancel = self._refused_cancel
            other._models = self._models
            self._as[name] = other
        return self._as[name]

    def call(self, method: str, path: str, **kwargs: Any) -> ApiResponse:
        """One signed call; CliError(UNREACHABLE) when the API cannot be reached or does not answer in time.

        A refused connection may mean the sandbox restarted elsewhere: the endpoints file is read
        again and the call tried once more at the new address."""
        try:
            return self._call_once(method, path, **kwargs)
        except CliError as exc:
            if exc.code != ExitCode.UNREACHABLE or not self._source.refresh():
                raise
        return self._call_once(method, path, **kwargs)

    def _call_once(self, method: str, path: str, **kwargs: Any) -> ApiResponse:
        with self._client_factory(self.place.target) as client:
            return client.call(method, path, **kwargs)

    def usage(self) -> dict[str, Any] | None:
        """The caller's day (GET /usage); None when the API cannot say."""
        try:
            answer = self.call("GET", "/usage")
        except CliError:
            return None
        return answer.body if answer.status == 200 and isinstance(answer.body, dict) else None

    def budget_line(self) -> str | None:
        """The header's word on the caller's day (GET /usage); None when the API cannot say."""
        body = self.usage()
        if body is None:
            return None
        left = body.get("left_seconds")
        if left is None:
            return "budget: no cap today"
        return f"budget: {left} s left today (renews {str(body.get('renews_at', ''))[11:16]} UTC)"

    def list_jobs(
        self, *, status: str | None, limit: int = 50, cursor: str | None = None, **filters: str | None
    ) -> ApiResponse:
        """A page of jobs; SUCCEEDED ones carry their `video` (the API's presigned URL) for the gallery.

        `filters` (since, until, q, order) go to the API as they are: one that ignores them still answers."""
        query = {"status": status, "limit": limit, "cursor": cursor, **filters}
        answer = self.call("GET", "/videos", query=query)
        if answer.status == 200:
            for job in page_items(answer.body):
                if job.get("status") == "SUCCEEDED" and not job.get("video"):
                    job["video"] = self._video(str(job.get("job_id")))
        return answer

    def _video(self, job_id: str) -> dict[str, Any] | None:
        """A finished job's video view, cached for two thirds of its URL's life (it never changes)."""
        now = self._clock()
        if self._videos_generation != self._source.generation:
            self._videos.clear()
            self._videos_generation = self._source.generation
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
        answer = self.call("GET", f"/videos/{job_id}")
        if answer.status == 200 and isinstance(answer.body, dict) and job_id in self._refused_cancel:
            answer.body["cancellable"] = False
        return answer

    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> ApiResponse:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.call("POST", "/videos", json_body=body, headers=headers)

    def cancel(self, job_id: str) -> ApiResponse:
        answer = self.call("DELETE", f"/videos/{job_id}")
        if answer.status == 409 and error_code(answer.body) == "NotCancelable":
            self._refused_cancel.add(job_id)  # already running (or ended): the button goes
        return answer

    def stream_video(self, url: str, what: str = "the video") -> tuple[int | None, Iterator[bytes]]:
        """The presigned URL's bytes, fetched here so the console can answer as an attachment
        (a link to another origin cannot make the browser save it); CliError when it cannot.

        `what` names the file in the errors (a batch's results come this way too)."""
        if not url.startswith(("https://", "http://")):
            raise CliError(f"the URL of {what} is not an HTTP URL")
        timeout = httpx.Timeout(30.0, connect=API_TIMEOUT_SECONDS)
        http = httpx.Client(timeout=timeout, transport=self._video_transport)
        try:
            response = http.send(http.build_request("GET", url), stream=True)
        except httpx.TransportError as exc:
            http.close()
            raise CliError(f"cannot fetch {what}: {exc}", ExitCode.UNREACHABLE) from None
        if response.status_code != 200:
            response.close()
            http.close()
            raise CliError(f"cannot fetch {what}: HTTP {response.status_code} from its presigned URL")
        length = response.headers.get("content-length")

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.iter_bytes(chunk_size=256 * 1024)
            finally:
                response.close()
                http.close()

        return (int(length) if length and length.isdigit() else None), chunks()

    def models(self) -> Catalog | None:
        """The model families (GET /v1/models), cached a minute; None for an API without them (the
        form is then today's text to video). While the API cannot be reached, the families it last
        listed (or today's form): the form still opens and keeps what is typed, as it always did."""
        now = self._clock()
        if self._models and self._models[0][0] > now and self._models[0][1] == self._source.generation:
            return self._models[0][2]
        try:
            answer = self.call("GET", "/models")
        except CliError:
            return self._models[0][2] if self._models else None
        catalog: Catalog | None = None
        if answer.status == 200:
            try:
                catalog = parse_catalog(answer.body)
            except ModelsError:
                catalog = None
        elif answer.status not in {403, 404}:
            return self._models[0][2] if self._models else None
        self._models[:] = [(now + MODELS_TTL_SECONDS, self._source.generation, catalog)]
        return catalog

    def upload_image(self, filename: str, data: bytes, limits: ImageLimits, field: str) -> UploadedImage:
        """An image into this caller's folder of the input prefix, checked by its bytes first;
        ModelsError naming the image when it cannot be taken."""
        return upload_image(self.place, filename, data, limits, field)

    def image(self, url: str) -> tuple[bytes, str] | None:
        """A job's s3:// image and its type, for a thumbnail; None for anything else.

        Only objects of this stack's bucket under the input prefix are read, with this caller's
        credentials, and only what the bytes show to be a JPEG, PNG or WEBP is returned (never
        markup, whatever the object's name or metadata say)."""
        place = self.place
        bucket, _, key = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or bucket != place.bucket or not key.startswith(image_prefix(place)):
            return None
        try:
            answer = place.client("s3").get_object(Bucket=bucket, Key=key)
            if int(answer.get("ContentLength") or 0) > MAX_THUMBNAIL_SOURCE_BYTES:
                answer["Body"].close()
                return None
            data: bytes = answer["Body"].read(MAX_THUMBNAIL_SOURCE_BYTES + 1)
        except (BotoCoreError, ClientError):
            return None
        kind = sniff(data[:16])
        if kind not in SHOWN_IMAGE_TYPES or len(data) > MAX_THUMBNAIL_SOURCE_BYTES:
            return None
        return data, SHOWN_IMAGE_TYPES[kind]

    def upload(self, filename: str, data: bytes) -> Uploaded:
        return upload_prompt_file(self.place, filename, data)

    # --- batches (docs/batches.md)
    def list_batches(self, *, limit: int = 50, cursor: str | None = None) -> ApiResponse:
        return self.call("GET", "/batches", query={"limit": limit, "cursor": cursor})

    def get_batch(self, batch_id: str) -> ApiResponse:
        return self.call("GET", f"/batches/{batch_id}")

    def cancel_batch(self, batch_id: str) -> ApiResponse:
        return self.call("DELETE", f"/batches/{batch_id}")

    def batch_results(self, batch_id: str) -> ApiResponse:
        return self.call("GET", f"/batches/{batch_id}/results")

    def submit_batch(self, filename: str, data: bytes, *, notify_lines: bool) -> ApiResponse:
        """The file into this caller's own folder (`t2v batch submit`'s rules: BatchFileError naming the
        file and the rule), then POST /v1/batches naming it."""
        uploaded = upload_batch_file(self.place, filename, data)
        return self.call("POST", "/batches", json_body=batch_body(uploaded, notify_lines=notify_lines))
