"""The console's form for model families (from a fake GET /v1/models), its image uploads into the
caller's folder, and a job's thumbnails: no network, a fake API and a fake S3."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from t2v_client import ApiClient
from t2v_console.app import create_app
from t2v_console.backend import ConsoleBackend

from tests.unit.test_cli_models import MODELS, PNG, FakeS3
from tests.unit.test_cli_models import place as fake_place
from tests.unit.test_console import FakeApi, token

FOLDER = "inputs/123456789012/user/alice/"  # the API's rule (t2v.images.ImagePlace.folder_of)
IT2V = "pixverse/pixverse-v5.6-it2v"
KF2V = "pixverse/pixverse-v5.6-kf2v"


class ModelsApi(FakeApi):
    now = 0.0  # the console's clock (its cache of GET /v1/models lasts a minute)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            self.calls.append((request.method, request.url.path, None))
            return httpx.Response(200, json=MODELS)
        return super().__call__(request)


@pytest.fixture
def api() -> ModelsApi:
    return ModelsApi()


@pytest.fixture
def s3() -> FakeS3:
    return FakeS3()


@pytest.fixture
def client(api: ModelsApi, s3: FakeS3) -> Any:
    place = fake_place(s3, "bkt")
    backend = ConsoleBackend(
        place,
        client_factory=lambda t: ApiClient(t, transport=httpx.MockTransport(api)),
        clock=lambda: api.now,
    )
    app = create_app(backend)
    app.config["ALLOWED_HOSTS"] = frozenset({"localhost"})
    return app.test_client()


def posts(api: ModelsApi) -> list[Any]:
    return [body for method, path, body in api.calls if (method, path) == ("POST", "/v1/videos")]


def test_the_form_offers_every_model_and_each_ones_fields(client: Any, api: ModelsApi) -> None:
    page = client.get("/new").get_data(as_text=True)
    # The default (text to video) is shown with its size; the others wait in templates
    assert '<option value="pixverse/pixverse-v5.6-t2v" selected>' in page
    assert f'data-model-template="{IT2V}"' in page and f'data-model-template="{KF2V}"' in page
    live = page.split('<div id="model-fields">')[1].split("</form>")[0]
    assert 'id="size"' in live and 'id="resolution"' not in live and 'type="file"' not in live

    kf2v = client.get("/new?model=kf2v").get_data(as_text=True).split('<div id="model-fields">')[1]
    live = kf2v.split("</form>")[0]
    assert 'id="image"' in live and 'id="last-frame"' in live and 'id="resolution"' in live
    assert 'id="size"' not in live and 'id="audio"' in live
    assert 'accept="image/jpeg,image/png,image/webp"' in live and 'data-max-bytes="20971520"' in live
    assert [c for c in api.calls if c[1] == "/v1/models"] == [("GET", "/v1/models", None)]  # cached


def test_an_it2v_request_uploads_the_image_to_the_callers_folder(
    client: Any, api: ModelsApi, s3: FakeS3
) -> None:
    form = client.get(f"/new?model={IT2V}").get_data(as_text=True)
    fields = {"csrf": token(form), "model": IT2V, "prompt": "", "resolution": "540P", "duration": "5"}
    answer = client.post("/new", data={**fields, "image": (io.BytesIO(PNG), "my cat.png")})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    (key,) = s3.objects
    assert key.startswith(f"bkt/{FOLDER}") and key.endswith("-my-cat.png")
    (body,) = posts(api)
    assert body == {
        "model": IT2V,
        "resolution": "540P",
        "duration": 5,
        "audio": False,
        "watermark": False,
        "media": [{"type": "image_url", "url": f"s3://{key}"}],
    }


def test_images_are_checked_by_content_and_kf2v_needs_both(client: Any, api: ModelsApi, s3: FakeS3) -> None:
    form = client.get(f"/new?model={KF2V}").get_data(as_text=True)
    fields = {"csrf": token(form), "model": KF2V, "prompt": "walk", "resolution": "720P"}
    refused = client.post("/new", data={**fields, "image": (io.BytesIO(b"<html>not a picture"), "photo.png")})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'id="error-image">photo.png: not an image its bytes show; accepted: JPEG, PNG, WEBP' in page
    assert f"Last frame (image): {KF2V} needs this image" in page
    assert s3.objects == {} and posts(api) == []

    # A good first frame is kept (uploaded once) while the last is still missing
    again = client.post("/new", data={**fields, "image": (io.BytesIO(PNG), "a.png")})
    assert again.status_code == 400
    (kept,) = s3.objects
    assert f'name="kept_image" value="s3://{kept}"' in again.get_data(as_text=True)
    done = client.post(
        "/new", data={**fields, "kept_image": f"s3://{kept}", "last_frame": (io.BytesIO(PNG + b"1"), "b.png")}
    )
    assert done.status_code == 303
    assert [m["type"] for m in posts(api)[0]["media"]] == ["first_frame", "last_frame"]


def test_a_field_of_another_model_is_never_sent(client: Any, api: ModelsApi) -> None:
    form = client.get("/new").get_data(as_text=True)
    fields = {"csrf": token(form), "model": IT2V, "size": "640*360", "image": (io.BytesIO(PNG), "a.png")}
    assert client.post("/new", data=fields).status_code == 303
    assert "size" not in posts(api)[0]


def test_the_job_page_shows_the_jobs_images_through_the_console_only(
    client: Any, api: ModelsApi, s3: FakeS3
) -> None:
    s3.objects[f"bkt/{FOLDER}x-a.png"] = PNG
    s3.objects[f"bkt/{FOLDER}x-evil.png"] = b"<svg onload=alert(1)>"
    media = [
        {"type": "first_frame", "url": f"s3://bkt/{FOLDER}x-a.png"},
        {"type": "last_frame", "url": "https://example.com/b.png"},
        {"type": "image_url", "url": f"s3://bkt/{FOLDER}x-evil.png"},
        {"type": "image_url", "url": "s3://other-bucket/inputs/f/a.png"},
    ]
    api.jobs["job-i"] = {
        "job_id": "job-i",
        "status": "SUCCEEDED",
        "request": {"model": KF2V, "media": media, "resolution": "720P", "duration": 5},
    }
    assert "pixverse-v5.6-kf2v · 720P · 5 s" in client.get("/").get_data(as_text=True)  # the gallery's card
    page = client.get("/jobs/job-i").get_data(as_text=True)
    assert 'id="image-0" src="/jobs/job-i/images/0"' in page
    assert 'href="https://example.com/b.png" rel="noreferrer noopener"' in page

    shown = client.get("/jobs/job-i/images/0")
    assert shown.status_code == 200 and shown.mimetype == "image/png" and shown.data == PNG
    assert (
        "blob:" in shown.headers["Content-Security-Policy"]
        and shown.headers["X-Content-Type-Options"] == "nosniff"
    )
    assert client.get("/jobs/job-i/images/1").status_code == 404  # an https URL is never fetched here
    assert client.get("/jobs/job-i/images/2").status_code == 404  # not image bytes: never served
    assert client.get("/jobs/job-i/images/3").status_code == 404  # not the stack's input prefix
    assert client.get("/jobs/job-i/images/9").status_code == 404
    # Another caller's job is a 404 at the API, so its images are too
    assert client.get("/jobs/someone-elses/images/0").status_code == 404

    rerun = client.get("/new?from=job-i").get_data(as_text=True)
    assert f'<option value="{KF2V}" selected>' in rerun
    assert f'name="kept_image" value="s3://bkt/{FOLDER}x-a.png"' in rerun


def test_the_form_opens_while_the_api_is_down_with_the_models_it_last_listed(
    client: Any, api: ModelsApi
) -> None:
    assert f'data-model-template="{KF2V}"' in client.get("/new").get_data(as_text=True)
    api.down = True
    api.now += 120
    # Given the API gone (past the cache's minute too), the form still offers every model it knew
    page = client.get("/new?model=kf2v")
    assert page.status_code == 200
    assert 'id="last-frame"' in page.get_data(as_text=True)
