"""The console's batches (docs/batches.md): the list, running a .jsonl file (uploaded into the caller's
folder, then POST /v1/batches), a batch's page with its jobs, cancel and the results download; a fake
API behind httpx's MockTransport and a fake S3, no network."""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
import pytest
from t2v_client import ApiClient
from t2v_console.app import create_app
from t2v_console.backend import ConsoleBackend

from tests.unit.test_cli_batch import BID, FOLDER, RESULTS, BatchApi, S3WithVersions, view
from tests.unit.test_cli_models import place as fake_place
from tests.unit.test_console import token


@pytest.fixture
def api() -> BatchApi:
    return BatchApi()


@pytest.fixture
def s3() -> S3WithVersions:
    return S3WithVersions()


@pytest.fixture
def client(api: BatchApi, s3: S3WithVersions) -> Any:
    backend = ConsoleBackend(
        fake_place(s3, "bkt"),
        client_factory=lambda t: ApiClient(t, transport=httpx.MockTransport(api)),
        video_transport=httpx.MockTransport(api),
    )
    app = create_app(backend)
    app.config["ALLOWED_HOSTS"] = frozenset({"localhost"})
    return app.test_client()


def text(answer: Any) -> str:
    return str(answer.get_data(as_text=True))


def batch_calls(api: BatchApi) -> list[tuple[str, str, Any]]:
    return [c for c in api.calls if c[1].startswith("/v1/batches")]


def test_every_page_links_to_the_batches_and_the_list_shows_each_with_its_bar(
    client: Any, api: BatchApi
) -> None:
    assert '<a href="/batches" id="nav-batches">Batches</a>' in text(client.get("/"))
    empty = text(client.get("/batches"))
    assert 'id="no-batches"' in empty and 'id="batch-form"' in empty

    api.batches[BID] = view(created_at="2026-12-07T10:00:00Z")
    api.batches["batch-old"] = view("batch-old", "COMPLETED", created_at="2026-12-06T09:00:00Z")
    page = text(client.get("/batches"))
    assert page.index(BID) < page.index("batch-old")  # newest first, as the API lists them
    first = page.split(f'data-batch="{BID}"')[1].split("</article>")[0]
    assert f'<progress max="1" value="0.0155" data-bar="{BID}">' in first
    assert f'data-percent="{BID}">2%<' in first
    assert '<span class="badge">RUNNING</span>' in first
    assert "31 of 2000 lines ended" in first and "active 8" in first and "not started 1961" in first
    done = page.split('data-batch="batch-old"')[1].split("</article>")[0]
    assert 'value="1.0"' in done and ">100%<" in done
    assert 'data-live="/fragments/batches"' in page
    fragment = text(client.get("/fragments/batches"))
    assert f'data-batch="{BID}"' in fragment and "<html" not in fragment


def test_a_jsonl_file_is_uploaded_to_the_callers_folder_and_run_as_a_batch(
    client: Any, api: BatchApi, s3: S3WithVersions
) -> None:
    form = {"csrf": token(text(client.get("/batches"))), "notify_lines": "on"}
    data = b'{"prompt": "a fox"}\n{"prompt": "a cat"}\n'
    answer = client.post("/batches", data={**form, "file": (io.BytesIO(data), "my prompts.jsonl")})
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/batches/{BID}")
    (stored,) = s3.objects
    key = stored.removeprefix("bkt/")
    assert key.startswith(FOLDER) and key.endswith("-my-prompts.jsonl") and s3.objects[stored] == data
    posted = [c for c in batch_calls(api) if c[0] == "POST"]
    assert posted == [("POST", "/v1/batches", {"key": key, "notify_lines": True, "version": "v1"})]


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("prompts.txt", b'{"prompt": "a"}', "file: prompts.txt: a batch file must end in .jsonl"),
        ("p.jsonl", b"", "file: p.jsonl: no lines"),
        ("", b"", "file: choose a .jsonl file"),
    ],
)
def test_a_file_the_batch_would_refuse_is_named_with_its_rule_and_nothing_is_sent(
    client: Any, api: BatchApi, s3: S3WithVersions, name: str, data: bytes, said: str
) -> None:
    form = {"csrf": token(text(client.get("/batches")))}
    answer = client.post("/batches", data={**form, "file": (io.BytesIO(data), name)})
    assert answer.status_code == 400
    error = re.search(r'id="batch-error">([^<]*)<', text(answer))
    assert error and error.group(1).startswith(said)
    assert s3.objects == {} and batch_calls(api) == [("GET", "/v1/batches", None)] * 2


def test_the_apis_refusal_is_shown_and_a_post_without_the_token_is_refused(
    client: Any, api: BatchApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    form = {"csrf": token(text(client.get("/batches")))}
    # A caller whose folder is not the one the API expects: the API's 400 names the field
    monkeypatch.setattr("t2v_client.batches.own_folder", lambda place: "inputs/999/user/mallory/")
    answer = client.post("/batches", data={**form, "file": (io.BytesIO(b'{"prompt": "a"}\n'), "a.jsonl")})
    assert answer.status_code == 400
    assert "HTTP 400 InvalidRequest: key: not in your folder [key (must be in your own folder" in text(answer)
    refused = client.post("/batches", data={"file": (io.BytesIO(b'{"prompt": "a"}\n'), "a.jsonl")})
    assert refused.status_code == 403


def test_the_batch_page_shows_progress_counts_and_its_jobs_and_refreshes_while_it_runs(
    client: Any, api: BatchApi
) -> None:
    api.batches[BID] = view()
    api.jobs["job-1"] = {
        "job_id": "job-1",
        "status": "SUCCEEDED",
        "request": {"prompt": "line one", "size": "640*360", "duration": 5},
        "origin": {"door": "s3", "key": "k.jsonl", "line": 1},
        "video": {"url": "http://s3.test/k.mp4?sig", "expires_in": 900},
    }
    page = text(client.get(f"/batches/{BID}"))
    assert (
        '<progress id="progress" max="1" value="0.0155">' in page and '<span id="percent">2 %</span>' in page
    )
    for name, count in [("succeeded", 10), ("failed", 21), ("canceled", 0), ("timed_out", 0), ("active", 8)]:
        assert f'id="count-{name}">{count}<' in page
    assert 'id="count-not_started">1961<' in page
    assert "expected 2026-12-07 10:20:34 UTC" in page
    assert 'id="video-seconds">9900 s (reserved 9900 s of 2026-12-07)' in page
    assert 'id="owner">arn:aws:iam::123456789012:user/alice<' in page
    assert f"s3://bkt/{FOLDER}0123456789abcdef-fox.jsonl (version v1)" in page
    assert 'id="cancel"' in page and 'id="results"' not in page  # cancellable, not ended
    assert (
        f'data-live="/fragments/batches/{BID}" data-every="2000"' in page
        and "data-stop-when-terminal" in page
    )
    assert 'data-terminal="0"' in page
    # its jobs, through GET /v1/videos?batch=, as the gallery's cards
    assert 'data-job="job-1"' in page and "line one" in page and "http://s3.test/k.mp4?sig" in page
    listed = [r for r in api.requests if r.url.path == "/v1/videos"]
    assert listed and dict(listed[-1].url.params) == {"batch": BID, "limit": "24"}
    assert f'data-live="/fragments/batches/{BID}/jobs"' in page
    assert 'data-job="job-1"' in text(client.get(f"/fragments/batches/{BID}/jobs"))


def test_an_ended_batch_offers_its_results_and_no_cancel(client: Any, api: BatchApi) -> None:
    api.batches[BID] = view(status="COMPLETED")
    live = text(client.get(f"/fragments/batches/{BID}"))
    assert 'data-terminal="1"' in live and 'id="cancel"' not in live
    assert f'id="results" href="/batches/{BID}/results"' in live
    assert 'id="eta"' not in live and '<span id="percent">100 %</span>' in live
    refused = view(
        status="REFUSED", cancellable=False, error={"code": "BatchRefused", "message": "over budget"}
    )
    api.batches[BID] = refused
    page = text(client.get(f"/batches/{BID}"))
    assert "<strong>BatchRefused</strong>: over budget" in page and 'id="cancel"' not in page


def test_results_download_through_the_console_and_a_running_batch_says_not_yet(
    client: Any, api: BatchApi
) -> None:
    api.batches[BID] = view()
    running = client.get(f"/batches/{BID}/results")
    assert running.status_code == 409
    assert "has not ended yet" in text(running) and "<h1>Not yet</h1>" in text(running)
    api.batches[BID] = view(status="COMPLETED")
    answer = client.get(f"/batches/{BID}/results")
    assert answer.status_code == 200 and answer.data == RESULTS
    assert answer.headers["Content-Disposition"] == f'attachment; filename="{BID}-results.jsonl"'
    assert answer.mimetype == "application/x-ndjson"


def test_cancel_asks_the_api_and_says_how_it_went(client: Any, api: BatchApi) -> None:
    api.batches[BID] = view()
    form = {"csrf": token(text(client.get(f"/batches/{BID}")))}
    answer = client.post(f"/batches/{BID}/cancel", data=form, follow_redirects=True)
    assert ("DELETE", f"/v1/batches/{BID}", None) in api.calls
    page = text(answer)
    assert 'id="notice" data-kind="ok">cancel requested' in page
    assert '<span class="badge big" id="status">CANCELING</span>' in page and 'id="cancel"' not in page

    api.batches[BID] = view(status="CANCELED")
    again = text(client.post(f"/batches/{BID}/cancel", data=form, follow_redirects=True))
    assert 'data-kind="info">this batch was canceled before; nothing to do' in again
    api.batches[BID] = view(status="COMPLETED")
    ended = text(client.post(f"/batches/{BID}/cancel", data=form, follow_redirects=True))
    assert 'data-kind="error">HTTP 409 BatchEnded: batch' in ended


def test_unknown_batches_are_a_styled_404_and_an_unreachable_api_says_reconnecting(
    client: Any, api: BatchApi
) -> None:
    missing = client.get("/batches/batch-nope")
    assert missing.status_code == 404 and "no batch batch-nope for this caller" in text(missing)
    assert client.get("/batches/bad%20id").status_code == 404
    api.down = True
    page = client.get("/batches")
    assert page.status_code == 503 and 'data-reload-when-back="/fragments/health"' in text(page)
    fragment = client.get(f"/fragments/batches/{BID}")
    assert fragment.status_code == 503 and "data-unreachable" in text(fragment)
