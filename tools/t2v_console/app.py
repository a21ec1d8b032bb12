"""`t2v console`: a small Flask app on 127.0.0.1 to submit, watch, play and cancel videos.

Pages are rendered on the server (Jinja); `static/console.js` (plain JavaScript, no build step)
refreshes the gallery and a job's live section from HTML fragments. Every API call is signed in
this process (`ConsoleBackend`); a page never holds a credential. Because the console acts with
the user's credentials, it answers only to its own host name (no DNS rebinding) and every form
carries a per-process token (no cross-site form posts that would start billed videos).

In the sandbox, the header's picker switches which of its identities signs: a form post (token
checked) sets a cookie holding the name and its HMAC under the process's token, so no other page,
not even another port of 127.0.0.1, can choose one; each request signs as its cookie's identity, or
as the one the console started with (`t2v console --as NAME`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
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
    url_for,
)
from t2v_client import CliError, error_line
from werkzeug.datastructures import FileStorage

from t2v_console.backend import (
    SIZE_CHOICES,
    STATUSES,
    TERMINAL,
    ConsoleBackend,
    UploadError,
)

JOB_ID: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
IDENTITY_COOKIE: Final = "t2v_identity"
CANCELABLE: Final = frozenset({"ACCEPTED", "WAITING", "SUBMITTED", "PENDING"})
DEFAULT_FORM: Final = {
    "prompt": "",
    "size": "1280*720",
    "duration": "5",
    "seed": "",
    "audio": "",
    "watermark": "",
}
SECURITY_HEADERS: Final = {
    # Scripts and styles only from the console itself; videos come from presigned S3 URLs.
    "Content-Security-Policy": (
        "default-src 'self'; media-src 'self' http: https:; img-src 'self' data:; "
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
    app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024  # a few prompt files at most
    app.extensions["t2v_console"] = ConsoleState(backend, secrets.token_urlsafe(24))
    app.before_request(_guard)
    app.after_request(_headers)
    app.context_processor(_globals)
    app.add_template_filter(_short_time, "short_time")
    app.add_template_filter(_origin_text, "origin")
    app.add_template_filter(_seconds_left, "seconds_left")
    app.register_blueprint(pages)
    app.register_error_handler(CliError, _unreachable)
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
        "cancelable": CANCELABLE,
        "budget_line": backend.budget_line,  # the acting identity's day; called by base.html only
    }


def _unreachable(exc: CliError) -> tuple[str, int]:
    return render_template("error.html", message=str(exc)), 502


# --- gallery
def _page(status: str | None) -> tuple[list[dict[str, Any]], str | None]:
    answer = _backend().list_jobs(status=status)
    if answer.status != 200:
        return [], error_line(answer.status, answer.body)
    return list((answer.body or {}).get("items") or []), None


def _status_arg() -> str | None:
    status = (request.args.get("status") or "").upper()
    return status if status in STATUSES else None


@pages.get("/")
def gallery() -> str:
    status = _status_arg()
    jobs, error = _page(status)
    return render_template(
        "gallery.html", jobs=jobs, error=error, status=status, notice=request.args.get("notice")
    )


@pages.get("/fragments/gallery")
def gallery_fragment() -> str:
    jobs, error = _page(_status_arg())
    return render_template("_cards.html", jobs=jobs, error=error)


# --- one job
def _job(job_id: str) -> dict[str, Any]:
    if not JOB_ID.match(job_id):
        abort(404)
    answer = _backend().get_job(job_id)
    if answer.status == 404:
        abort(404)
    if answer.status != 200:
        abort(502, error_line(answer.status, answer.body))
    job: dict[str, Any] = answer.body
    return job


@pages.get("/jobs/<job_id>")
def job_page(job_id: str) -> str:
    return render_template("job.html", job=_job(job_id), notice=request.args.get("notice"))


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
    notice = "cancel requested" if answer.status < 300 else error_line(answer.status, answer.body)
    return redirect(url_for("console.job_page", job_id=job_id, notice=notice), code=303)


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
    response = redirect(url_for("console.gallery", notice=f"acting as {name}"), code=303)
    response.set_cookie(IDENTITY_COOKIE, _seal(name), httponly=True, samesite="Strict", path="/")
    return response


# --- new videos
@pages.get("/new")
def new_form() -> str:
    return render_template("new.html", form=DEFAULT_FORM, sizes=SIZE_CHOICES, errors={}, error=None)


@pages.post("/new")
def submit() -> Any:
    form = {name: request.form.get(name, "") for name in DEFAULT_FORM}
    body, errors = request_from_form(form)
    if errors:
        return _form(form, errors, None, 400)
    answer = _backend().submit(body)
    if answer.status == 202:
        return redirect(url_for("console.job_page", job_id=str(answer.body["job_id"])), code=303)
    return _form(form, field_errors(answer.body), error_line(answer.status, answer.body), answer.status)


def _form(form: dict[str, str], errors: dict[str, str], error: str | None, code: int) -> tuple[str, int]:
    return render_template("new.html", form=form, sizes=SIZE_CHOICES, errors=errors, error=error), code


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
    page = render_template(
        "new.html", form=DEFAULT_FORM, sizes=SIZE_CHOICES, errors={}, error=None, upload_error=message
    )
    return page, 400


def request_from_form(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The POST /videos body from the form's text fields; errors here are only about form syntax.

    Everything else (sizes, the duration rule, the prompt's limits) is the API's to judge, so the
    page shows the server's own field errors.
    """
    body: dict[str, Any] = {"prompt": form["prompt"], "size": form["size"]}
    errors: dict[str, str] = {}
    for name in ("duration", "seed"):
        text = form[name].strip()
        if not text:
            continue
        if not re.fullmatch(r"-?\d{1,12}", text):
            errors[name] = f"{name} must be a whole number"
            continue
        body[name] = int(text)
    body["audio"] = form["audio"] == "on"
    body["watermark"] = form["watermark"] == "on"
    return body, errors


def field_errors(body: Any) -> dict[str, str]:
    """`{"error": {"fields": [{"field", "message"}]}}` as field -> message (several joined)."""
    error = body.get("error") if isinstance(body, dict) else None
    found: dict[str, str] = {}
    for item in (error or {}).get("fields") or []:
        if isinstance(item, dict) and item.get("field"):
            name = str(item["field"]).split(".")[-1]
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
