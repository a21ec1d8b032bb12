"""`t2v console`: a small Flask app on 127.0.0.1 to submit, watch, play and cancel videos.

Pages are rendered on the server (Jinja); `static/console.js` (plain JavaScript, no build step)
refreshes the gallery and a job's live section from HTML fragments. Every API call is signed in
this process (`ConsoleBackend`); a page never holds a credential. Because the console acts with
the user's credentials, it answers only to its own host name (no DNS rebinding) and every form
carries a per-process token (no cross-site form posts that would start billed videos).

When the API cannot be reached or does not answer within a few seconds, a page says so and keeps
trying ("reconnecting"); the backend follows a restarted sandbox to its new address. A video is
downloaded through the console (`/jobs/<id>/download`, an attachment): a link to the presigned URL
is another origin's, where browsers ignore `download`.

In the sandbox, the header's picker switches which of its identities signs: a form post (token
checked) sets a cookie holding the name and its HMAC under the process's token, so no other page,
not even another port of 127.0.0.1, can choose one; each request signs as its cookie's identity, or
as the one the console started with (`t2v console --as NAME`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from t2v_client import CliError, error_line
from t2v_client.batches import ENDED as BATCH_ENDED
from t2v_client.batches import BatchFileError, batch_facts
from t2v_client.models import ModelsError
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import HTTPException

from t2v_console.backend import (
    API_TIMEOUT_SECONDS,
    STATUSES,
    TERMINAL,
    ConsoleBackend,
    UploadError,
    cancellable,
    cost_line,
    idempotency_key,
    page_items,
)
from t2v_console.forms import (
    KEPT_SCHEMES,
    FormFamily,
    default_form,
    form_families,
    form_from_request,
    pick,
    request_from_form,
)

JOB_ID: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
IDENTITY_COOKIE: Final = "t2v_identity"
PAGE_SIZE: Final = 24
ORDERS: Final = ("newest", "oldest")
NOTICE_KINDS: Final = frozenset({"ok", "info", "error"})
# A few prompt files, or two images at the largest the image families take (20 MiB each), and the form.
MAX_FORM_BYTES: Final = 48 * 1024 * 1024
FAVICON: Final = Path(__file__).parent / "static" / "favicon.svg"
SECURITY_HEADERS: Final = {
    # Scripts and styles only from the console itself; videos come from presigned S3 URLs; images
    # from the console (a job's thumbnails) or the page itself (blob: previews of chosen files).
    "Content-Security-Policy": (
        "default-src 'self'; media-src 'self' http: https:; img-src 'self' data: blob:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


pages = Blueprint("console", __name__)


@dataclass(frozen=True)
class ConsoleState:
    backend: ConsoleBackend
    token: str  # the per-process form token


def create_app(backend: ConsoleBackend) -> Flask:
    """The console for one stack. Set `ALLOWED_HOSTS` in its config once the port is known."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_FORM_BYTES
    app.extensions["t2v_console"] = ConsoleState(backend, secrets.token_urlsafe(24))
    app.before_request(_guard)
    app.after_request(_headers)
    app.context_processor(_globals)
    app.add_template_filter(_short_time, "short_time")
    app.add_template_filter(_origin_text, "origin")
    app.add_template_filter(_seconds_left, "seconds_left")
    app.add_template_filter(json_text, "json_text")
    app.add_template_filter(cost_line, "cost")
    app.add_template_filter(cancellable, "cancellable")
    app.add_template_filter(job_images, "images")
    app.add_template_filter(batch_facts, "batch")
    app.add_template_global(default_form, "default_form")
    app.register_blueprint(pages)
    app.register_error_handler(CliError, _unreachable)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _state() -> ConsoleState:
    state: ConsoleState = current_app.extensions["t2v_console"]
    return state


def _guard() -> None:
    allowed = current_app.config.get("ALLOWED_HOSTS")
    if allowed is not None and request.host not in allowed:
        abort(421, "this console answers only at its own address")
    if request.method == "POST" and not hmac.compare_digest(request.form.get("csrf", ""), _state().token):
        abort(403, "missing or stale form token: reload the page")
    g.backend = _state().backend.acting_as(_cookie_identity())


def _backend() -> ConsoleBackend:
    """The backend of this request: signing as the identity its cookie names (see the module's doc)."""
    backend: ConsoleBackend = g.backend
    return backend


def _seal(name: str) -> str:
    mac = hmac.new(_state().token.encode(), name.encode(), hashlib.sha256).hexdigest()
    return f"{name}.{mac}"


def _cookie_identity() -> str | None:
    """The identity the request's cookie names, if this process sealed it and the sandbox has it."""
    sealed = request.cookies.get(IDENTITY_COOKIE, "")
    name = sealed.rpartition(".")[0]
    if not name or not hmac.compare_digest(sealed, _seal(name)):
        return None
    return name if name in _state().backend.identities else None


def _headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _globals() -> dict[str, Any]:
    state = _state()
    backend: ConsoleBackend = g.get("backend", state.backend)
    return {
        "csrf": state.token,
        "where": state.backend.where,
        "identities": backend.identities,
        "identity": backend.identity,
        "statuses": STATUSES,
        "terminal": TERMINAL,
        "batch_ended": BATCH_ENDED,
        "budget_line": lambda: None if g.get("unreachable") else backend.budget_line(),
        "api_timeout": API_TIMEOUT_SECONDS,
        "notice_kind": _notice_kind(),
    }


def _notice_kind() -> str:
    kind = request.args.get("kind", "ok")
    return kind if kind in NOTICE_KINDS else "ok"


def _unreachable(exc: CliError) -> tuple[str, int]:
    """The API did not answer (refused, or not in time): say so, and let the page keep trying."""
    g.unreachable = True  # no further call in this request: a reload fails fast, not once per call
    if request.path.startswith("/fragments/"):
        return render_template("_reconnecting.html", message=str(exc)), 503
    page = render_template(
        "error.html", heading="Reconnecting to the API…", message=str(exc), reconnecting=True
    )
    return page, 503


def _http_error(exc: HTTPException) -> Any:
    """Every HTTP error as a page of the console (a styled 404 for an unknown job)."""
    code = exc.code or 500
    if code < 400:
        return exc  # a routing redirect (a trailing slash), not an error
    if request.path.startswith("/fragments/"):
        return render_template("_reconnecting.html", message=exc.description), code
    heading = {404: "Not found", 403: "Refused", 409: "Not yet", 421: "Wrong address"}.get(code, exc.name)
    g.unreachable = code == 502  # the API answered badly: the header asks it nothing more
    return render_template("error.html", heading=heading, message=exc.description, code=code), code


def json_text(value: Any) -> str:
    """A value of a JSON view as JSON writes it: true/false/null, not Python's True/False/None."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


@pages.get("/favicon.ico")
def favicon() -> Response:
    return send_file(FAVICON, mimetype="image/svg+xml", max_age=86400)


@pages.get("/fragments/health")
def health() -> tuple[str, int]:
    """200 once the API answers again (the reconnecting page reloads then); 503 while it does not."""
    answer = _backend().call("GET", "/usage")
    return ("ok" if answer.status < 500 else "the API answers with errors"), (
        200 if answer.status < 500 else 503
    )


# --- gallery
@dataclass(frozen=True)
class GalleryQuery:
    """The gallery's filters, from the page's query string; every one goes to the API's list."""

    status: str | None = None
    q: str = ""
    order: str = "newest"
    since: str = ""  # YYYY-MM-DD, from a date input
    until: str = ""
    limit: int = PAGE_SIZE

    @classmethod
    def from_args(cls) -> GalleryQuery:
        status = (request.args.get("status") or "").upper()
        order = request.args.get("order") or "newest"
        return cls(
            status=status if status in STATUSES else None,
            q=" ".join((request.args.get("q") or "").split())[:200],
            order=order if order in ORDERS else "newest",
            since=_day(request.args.get("since")),
            until=_day(request.args.get("until")),
            limit=_limit(request.args.get("limit")),
        )

    def args(self) -> dict[str, str]:
        """As URL parameters (what a fragment's or the next page's URL carries)."""
        found = {"status": self.status or "", "q": self.q, "order": self.order, "since": self.since}
        found = {k: v for k, v in {**found, "until": self.until}.items() if v and v != "newest"}
        return found | ({"limit": str(self.limit)} if self.limit != PAGE_SIZE else {})

    def filters(self) -> dict[str, str | None]:
        """As the API's query: ISO-8601 instants for the days (until: the end of its day)."""
        until = f"{date.fromisoformat(self.until) + timedelta(days=1)}T00:00:00Z" if self.until else None
        return {
            "q": self.q or None,
            "order": self.order if self.order != "newest" else None,
            "since": f"{self.since}T00:00:00Z" if self.since else None,
            "until": until,
        }

    def keeps(self, job: dict[str, Any]) -> bool:
        """The date range applied here too, so that an API which ignores it still shows only those days."""
        day = str(job.get("created_at") or "")[:10]
        return not day or ((not self.since or day >= self.since) and (not self.until or day <= self.until))


def _limit(text: str | None) -> int:
    return max(1, min(100, int(text))) if text and text.isdigit() else PAGE_SIZE


def _day(text: str | None) -> str:
    try:
        return date.fromisoformat(text or "").isoformat()
    except ValueError:
        return ""


@dataclass(frozen=True)
class GalleryPage:
    jobs: list[dict[str, Any]]
    error: str | None
    next_cursor: str | None


def _page(query: GalleryQuery, cursor: str | None = None) -> GalleryPage:
    answer = _backend().list_jobs(status=query.status, limit=query.limit, cursor=cursor, **query.filters())
    if answer.status != 200:
        return GalleryPage([], error_line(answer.status, answer.body), None)
    body = answer.body if isinstance(answer.body, dict) else {}
    jobs = [job for job in page_items(body) if query.keeps(job)]
    next_cursor = body.get("next_cursor")
    return GalleryPage(jobs, None, str(next_cursor) if next_cursor else None)


@pages.get("/")
def gallery() -> str:
    query = GalleryQuery.from_args()
    return render_template(
        "gallery.html", page=_page(query), query=query, notice=request.args.get("notice"), more=False
    )


@pages.get("/fragments/gallery")
def gallery_fragment() -> str:
    """The first page (the live refresh) or, with `cursor`, the next one ("Load more")."""
    query = GalleryQuery.from_args()
    cursor = request.args.get("cursor") or None
    return render_template("_cards.html", page=_page(query, cursor), query=query, more=cursor is not None)


# --- one job
def _job(job_id: str) -> dict[str, Any]:
    if not JOB_ID.match(job_id):
        abort(404, "no such job: job ids are letters, digits and . _ : -")
    answer = _backend().get_job(job_id)
    if answer.status == 404:
        abort(404, f"no job {job_id} for this caller (another identity's jobs are not shown)")
    if answer.status != 200:
        abort(502, error_line(answer.status, answer.body))
    job: dict[str, Any] = answer.body
    return job


@pages.get("/jobs/<job_id>")
def job_page(job_id: str) -> str:
    job = _job(job_id)
    usage = _backend().usage()
    return render_template("job.html", job=job, usage=usage, notice=request.args.get("notice"))


@pages.get("/jobs/<job_id>/download")
def download(job_id: str) -> Response:
    """The video as an attachment named after the job, fetched from its presigned URL here."""
    video = _job(job_id).get("video") or {}
    if not video.get("url"):
        abort(404, f"job {job_id} has no video")
    length, chunks = _backend().stream_video(str(video["url"]))
    response = Response(stream_with_context(chunks), mimetype="video/mp4")
    response.headers["Content-Disposition"] = f'attachment; filename="{job_id}.mp4"'
    if length is not None:
        response.headers["Content-Length"] = str(length)
    return response


def job_images(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The job's images as its request names them: type, URL, and whether the console shows a
    thumbnail (an object of the stack's bucket) or only the address (an https:// URL it never fetches)."""
    request_view: dict[str, Any] = job["request"] if isinstance(job.get("request"), dict) else {}
    media: list[Any] = request_view["media"] if isinstance(request_view.get("media"), list) else []
    return [
        {"index": index, "type": str(item.get("type") or "image"), "url": str(item.get("url") or "")}
        | {"thumbnail": str(item.get("url") or "").startswith("s3://")}
        | {"link": str(item.get("url") or "").startswith("https://")}
        for index, item in enumerate(media)
        if isinstance(item, dict)
    ]


@pages.get("/jobs/<job_id>/images/<int:index>")
def job_image(job_id: str, index: int) -> Response:
    """One of the job's images, read here with the caller's credentials: only a job the API shows this
    caller (another's is a 404 there), only an object of the stack's input prefix, only image bytes."""
    images = job_images(_job(job_id))
    if index >= len(images) or not images[index]["thumbnail"]:
        abort(404, f"job {job_id} has no image {index} to show")
    found = _backend().image(images[index]["url"])
    if found is None:
        abort(404, f"image {index} of job {job_id} cannot be shown (gone, or not a JPEG, PNG or WEBP)")
    data, content_type = found
    response = Response(data, mimetype=content_type)
    response.headers["Content-Disposition"] = "inline"
    return response


@pages.get("/fragments/jobs/<job_id>")
def job_fragment(job_id: str) -> str:
    return render_template("_live.html", job=_job(job_id))


@pages.get("/fragments/jobs/<job_id>/player")
def player_fragment(job_id: str) -> str:
    return render_template("_player.html", job=_job(job_id))


@pages.post("/jobs/<job_id>/cancel")
def cancel(job_id: str) -> Any:
    if not JOB_ID.match(job_id):
        abort(404)
    answer = _backend().cancel(job_id)
    if answer.status < 300:
        notice, kind = "cancel requested", "ok"
    else:
        notice, kind = error_line(answer.status, answer.body), "error"
    return redirect(url_for("console.job_page", job_id=job_id, notice=notice, kind=kind), code=303)


# --- batches: a .jsonl file run as one (docs/batches.md)
BATCH_PAGE_SIZE: Final = 50


@dataclass(frozen=True)
class BatchesPage:
    batches: list[dict[str, Any]]
    error: str | None
    next_cursor: str | None


def _batches_page(cursor: str | None = None) -> BatchesPage:
    answer = _backend().list_batches(limit=BATCH_PAGE_SIZE, cursor=cursor)
    if answer.status != 200:
        return BatchesPage([], error_line(answer.status, answer.body), None)
    body = answer.body if isinstance(answer.body, dict) else {}
    items = [item for item in body.get("items") or [] if isinstance(item, dict)]
    next_cursor = body.get("next_cursor")
    return BatchesPage(items, None, str(next_cursor) if next_cursor else None)


def _batches(error: str | None = None, code: int = 200) -> tuple[str, int]:
    cursor = request.args.get("cursor") or None
    page = render_template(
        "batches.html",
        page=_batches_page(cursor),
        cursor=cursor,
        notice=request.args.get("notice"),
        batch_error=error,
    )
    return page, code


@pages.get("/batches")
def batches() -> tuple[str, int]:
    return _batches()


@pages.get("/fragments/batches")
def batches_fragment() -> str:
    return render_template("_batch_rows.html", page=_batches_page(request.args.get("cursor") or None))


@pages.post("/batches")
def submit_batch() -> Any:
    """A chosen .jsonl into the caller's own folder, then run as a batch: its page, or this one with
    the reason (the file's name and the rule, or the API's field error)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _batches("file: choose a .jsonl file (one request per line)", 400)
    try:
        answer = _backend().submit_batch(
            str(upload.filename), upload.read(), notify_lines=request.form.get("notify_lines") == "on"
        )
    except BatchFileError as exc:
        return _batches(f"file: {exc}", 400)
    except CliError as exc:
        return _batches(
            f"{exc}: the batch may not have started; look for it below before sending it again", 503
        )
    if answer.status in {200, 201, 202} and isinstance(answer.body, dict) and answer.body.get("batch_id"):
        return redirect(url_for("console.batch_page", batch_id=str(answer.body["batch_id"])), code=303)
    return _batches(error_line(answer.status, answer.body), answer.status if answer.status >= 400 else 502)


def _batch(batch_id: str) -> dict[str, Any]:
    if not JOB_ID.match(batch_id):
        abort(404, "no such batch: batch ids are letters, digits and . _ : -")
    answer = _backend().get_batch(batch_id)
    if answer.status == 404:
        abort(404, f"no batch {batch_id} for this caller (another identity's batches are not shown)")
    if answer.status != 200 or not isinstance(answer.body, dict):
        abort(502, error_line(answer.status, answer.body))
    batch: dict[str, Any] = answer.body
    return batch


def _batch_jobs(batch_id: str, cursor: str | None = None) -> GalleryPage:
    """The batch's jobs in line order (GET /v1/videos?batch=), as the gallery's cards."""
    answer = _backend().list_jobs(status=None, limit=PAGE_SIZE, cursor=cursor, batch=batch_id)
    if answer.status != 200:
        return GalleryPage([], error_line(answer.status, answer.body), None)
    body = answer.body if isinstance(answer.body, dict) else {}
    next_cursor = body.get("next_cursor")
    return GalleryPage(page_items(body), None, str(next_cursor) if next_cursor else None)


@pages.get("/batches/<batch_id>")
def batch_page(batch_id: str) -> str:
    batch = _batch(batch_id)
    return render_template(
        "batch.html",
        batch=batch,
        page=_batch_jobs(batch_id),
        query=GalleryQuery(),
        more=False,
        empty="No jobs yet: the batch's lines start once its file is read.",
        notice=request.args.get("notice"),
    )


@pages.get("/fragments/batches/<batch_id>")
def batch_fragment(batch_id: str) -> str:
    return render_template("_batch_live.html", batch=_batch(batch_id))


@pages.get("/fragments/batches/<batch_id>/jobs")
def batch_jobs_fragment(batch_id: str) -> str:
    if not JOB_ID.match(batch_id):
        abort(404)
    cursor = request.args.get("cursor") or None
    return render_template(
        "_cards.html",
        page=_batch_jobs(batch_id, cursor),
        query=GalleryQuery(),
        more=cursor is not None,
        empty="No jobs yet: the batch's lines start once its file is read.",
    )


@pages.post("/batches/<batch_id>/cancel")
def cancel_batch(batch_id: str) -> Any:
    if not JOB_ID.match(batch_id):
        abort(404)
    answer = _backend().cancel_batch(batch_id)
    if answer.status < 300:
        notice, kind = "cancel requested: no further line starts; running lines end as they do", "ok"
    elif answer.status == 409 and _batch(batch_id).get("status") in {"CANCELED", "CANCELING"}:
        notice, kind = "this batch was canceled before; nothing to do", "info"
    else:
        notice, kind = error_line(answer.status, answer.body), "error"
    return redirect(url_for("console.batch_page", batch_id=batch_id, notice=notice, kind=kind), code=303)


@pages.get("/batches/<batch_id>/results")
def batch_results(batch_id: str) -> Response:
    """The ended batch's results JSONL as an attachment, fetched here from its presigned URL."""
    if not JOB_ID.match(batch_id):
        abort(404)
    answer = _backend().batch_results(batch_id)
    if answer.status == 409:
        abort(409, f"batch {batch_id} has not ended yet: its results can be downloaded once it ends")
    if answer.status == 404:
        abort(404, f"no batch {batch_id} for this caller")
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status != 200 or not body.get("results_url"):
        abort(502, error_line(answer.status, answer.body))
    length, chunks = _backend().stream_video(str(body["results_url"]), what="the batch's results")
    response = Response(stream_with_context(chunks), mimetype="application/x-ndjson")
    response.headers["Content-Disposition"] = f'attachment; filename="{batch_id}-results.jsonl"'
    if length is not None:
        response.headers["Content-Length"] = str(length)
    return response


# --- who calls (the sandbox's identities)
@pages.post("/identity")
def switch_identity() -> Any:
    name = request.form.get("identity", "")
    known = _state().backend.identities
    if name not in known:
        message = (
            f"no sandbox identity {name!r}; known: {', '.join(known)}"
            if known
            else ("identities are the sandbox's; on AWS the console signs as its --profile")
        )
        return render_template("error.html", heading="Unknown identity", message=message), 400
    response = redirect(url_for("console.gallery", notice=f"acting as {name}", kind="info"), code=303)
    response.set_cookie(IDENTITY_COOKIE, _seal(name), httponly=True, samesite="Strict", path="/")
    return response


# --- new videos
@pages.get("/new")
def new_form() -> tuple[str, int]:
    """The form for a model (`?model=`, else the default); `?from=JOB` fills it with that job's
    request (re-run with the same settings and images)."""
    source = request.args.get("from") or ""
    families = form_families(_backend().models())
    if source:
        req = _job(source).get("request") or {}
        family = pick(families, str(req.get("model") or ""))
        form = form_from_request(req, family.family)
    else:
        family = pick(families, request.args.get("model"))
        form = default_form(family)
    return _form(families, family, form)


def _posted(family: FormFamily) -> dict[str, str]:
    names = ["prompt", *(spec.name for spec in family.family.parameters)]
    names += [f"kept_{image.name}" for image in family.images]
    return {"model": family.value} | {name: request.form.get(name, "") for name in names}


@pages.post("/new")
def submit() -> Any:
    families = form_families(_backend().models())
    family = pick(families, request.form.get("model"))
    form = _posted(family)
    nonce = request.form.get("nonce") or secrets.token_urlsafe(12)
    if request.form.get("switch"):  # without JavaScript, the model's fields come with a reload
        return _form(families, family, default_form(family) | {"prompt": form["prompt"]}, nonce=nonce)
    body, errors = request_from_form(form, family.family)
    media, image_errors = _images(family, form)
    errors |= image_errors
    if errors:
        return _form(families, family, form, errors=errors, code=400, nonce=nonce)
    if media:
        body["media"] = media
    try:
        answer = _backend().submit(body, idempotency_key(nonce, body))
    except CliError as exc:
        # Nothing typed is lost: the same form comes back, and sending it again cannot make a second
        # video if this one did get through (the same idempotency key).
        message = f"{exc}: your request may not have been sent; press Request video again"
        return _form(families, family, form, error=message, code=503, nonce=nonce)
    if answer.status == 202:
        return redirect(url_for("console.job_page", job_id=str(answer.body["job_id"])), code=303)
    errors, error = field_errors(answer.body), error_line(answer.status, answer.body)
    return _form(families, family, form, errors=errors, error=error, code=answer.status, nonce=nonce)


def _images(family: FormFamily, form: dict[str, str]) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The request's media: each chosen file uploaded into the caller's folder (checked by its bytes
    first), else the one the form kept from before; errors by input, each naming the image."""
    media: list[dict[str, str]] = []
    errors: dict[str, str] = {}
    for image in family.images:
        kept = f"kept_{image.name}"
        upload = request.files.get(image.name)
        if upload is not None and upload.filename:
            try:
                limits = family.family.image_limits
                form[kept] = _backend().upload_image(upload.filename, upload.read(), limits, image.name).url
            except (ModelsError, CliError) as exc:
                errors[image.name] = str(exc)
                continue
        url = form.get(kept, "")
        if url.startswith(KEPT_SCHEMES):
            media.append({"type": image.media_type, "url": url})
        elif image.required:
            errors[image.name] = f"{image.label}: {family.value} needs this image (JPEG, PNG or WEBP)"
    return media, errors


def _form(
    families: tuple[FormFamily, ...],
    family: FormFamily,
    form: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    code: int = 200,
    nonce: str | None = None,
    upload_error: str | None = None,
) -> tuple[str, int]:
    page = render_template(
        "new.html",
        families=families,
        family=family,
        form=form,
        errors=errors or {},
        error=error,
        upload_error=upload_error,
        nonce=nonce or secrets.token_urlsafe(12),
    )
    return page, code


@pages.post("/upload")
def upload() -> Any:
    files: list[FileStorage] = [f for f in request.files.getlist("files") if f.filename]
    if not files:
        return _upload_refused("choose at least one .txt, .json or .jsonl file")
    keys = []
    for item in files:
        try:
            keys.append(_backend().upload(str(item.filename), item.read()).key)
        except UploadError as exc:
            return _upload_refused(str(exc))
    notice = "uploaded " + ", ".join(keys) + "; their jobs appear below within seconds"
    return redirect(url_for("console.gallery", notice=notice), code=303)


def _upload_refused(message: str) -> tuple[str, int]:
    families = form_families(_backend().models())
    family = pick(families, None)
    return _form(families, family, default_form(family), code=400, upload_error=message)


def field_errors(body: Any) -> dict[str, str]:
    """`{"error": {"fields": [{"field", "message"}]}}` as field -> message (several joined)."""
    error = body.get("error") if isinstance(body, dict) else None
    found: dict[str, str] = {}
    for item in (error or {}).get("fields") or []:
        if isinstance(item, dict) and item.get("field"):
            parts = str(item["field"]).split(".")
            name = "media" if "media" in parts or parts[0].startswith("media[") else parts[-1]
            found[name] = "; ".join(filter(None, [found.get(name), str(item.get("message") or "")]))
    return found


def _parse(stamp: Any) -> datetime | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _short_time(stamp: Any) -> str:
    parsed = _parse(stamp)
    return parsed.strftime("%Y-%m-%d %H:%M:%S") if parsed else "-"


def _seconds_left(stamp: Any) -> int | None:
    parsed = _parse(stamp)
    return None if parsed is None else max(0, round((parsed - datetime.now(UTC)).total_seconds()))


def _origin_text(job: dict[str, Any]) -> str:
    """Where a job came from, in one line: the file and line, the event id, or the API caller."""
    origin = job.get("origin") or {}
    source = job.get("source") or "?"
    if not isinstance(origin, dict) or not origin:
        return str(source)
    if origin.get("key"):
        line = f":{origin['line']}" if origin.get("line") else ""
        return f"file {origin['key']}{line}"
    if origin.get("event_id"):
        return f"event {origin['event_id']}"
    if origin.get("caller"):
        return f"api {origin['caller']}"
    return str(source)
