"""`t2v models` and `t2v submit --model/--image`: choices from GET /v1/models (a fake answer), images
checked by content and uploaded to the caller's folder before the request names them."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.credentials import Credentials
from t2v.families import describe_models
from t2v_client import ApiClient, CliError, ExitCode, Place, SandboxIdentity, Target
from t2v_client.images import image_key
from t2v_client.models import (
    ModelsError,
    check_image,
    parse_catalog,
    sniff,
)
from t2v_sandbox import cli
from t2v_sandbox.commands_user import submit_body

MODELS = describe_models()  # GET /v1/models as the API answers it, from the registry itself
TARGET = Target("http://api.test/v1", "us-east-1", Credentials("AKID", "secret"), identity="alice")
ALICE = "arn:aws:iam::123456789012:user/alice"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 64


class FakeApi:
    def __init__(self, models: Any = MODELS, status: int = 200) -> None:
        self.models, self.status = models, status
        self.calls: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path))
        if request.url.path == "/v1/models":
            return httpx.Response(self.status, json=self.models)
        return httpx.Response(404, json={"error": {"code": "NotFound", "message": "no"}})


class FakeS3:
    """put_object and get_object over a dict (the console's thumbnails read back what was put)."""

    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []
        self.objects: dict[str, bytes] = {}

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self.puts.append(kwargs)
        self.objects[f"{kwargs['Bucket']}/{kwargs['Key']}"] = kwargs["Body"]
        return {}

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        data = self.objects[f"{kwargs['Bucket']}/{kwargs['Key']}"]
        return {"Body": io.BytesIO(data), "ContentLength": len(data)}


class FakeSession:
    def __init__(self, s3: FakeS3) -> None:
        self.s3 = s3

    def client(self, service: str, endpoint_url: str | None = None) -> Any:
        assert service == "s3"
        return self.s3


def place(s3: FakeS3, bucket: str = "t2v-bucket") -> Place:
    """A sandbox place signed as alice, its S3 the fake."""
    return Place(
        target=TARGET,
        session=FakeSession(s3),
        endpoint_url=None,
        outputs={"OutputBucketName": bucket},
        sandbox=True,
        identities={"alice": SandboxIdentity("alice", Credentials("AKID", "secret"), ALICE)},
    )


def args(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["submit", *argv])


def body_of(
    parsed: argparse.Namespace, api: FakeApi | None = None, s3: FakeS3 | None = None
) -> dict[str, Any]:
    with ApiClient(TARGET, transport=httpx.MockTransport(api or FakeApi())) as client:
        return submit_body(parsed, client, lambda _: place(s3 or FakeS3()))


def test_text_to_video_is_unchanged_and_asks_no_models() -> None:
    api = FakeApi()
    assert body_of(args("a fox", "--size", "640*360", "--duration", "5"), api) == {
        "prompt": "a fox",
        "size": "640*360",
        "duration": 5,
    }
    assert api.calls == []


def test_it2v_with_a_local_image_uploads_it_to_the_callers_folder(tmp_path: Path) -> None:
    # Given a PNG on disk and the it2v model named by its short name
    image = tmp_path / "My Cat.png"
    image.write_bytes(PNG)
    s3 = FakeS3()
    body = body_of(
        args("--model", "pixverse-v5.6-it2v", "--image", str(image), "--resolution", "540P"), s3=s3
    )

    # Then the image lands in the caller's own folder, named by its content, and the request names it
    (put,) = s3.puts
    assert put["Bucket"] == "t2v-bucket" and put["ContentType"] == "image/png"
    # the API's own rule for alice's folder: inputs/<account>/user/alice/
    assert put["Key"].startswith("inputs/123456789012/user/alice/") and put["Key"].endswith("-My-Cat.png")
    assert body == {
        "model": "pixverse/pixverse-v5.6-it2v",
        "media": [{"type": "image_url", "url": f"s3://t2v-bucket/{put['Key']}"}],
        "resolution": "540P",
    }


def test_kf2v_takes_two_frames_and_urls_are_passed_as_they_are() -> None:
    s3 = FakeS3()
    body = body_of(
        args(
            "a walk",
            "--model",
            "kf2v",
            "--image",
            "https://e.test/a.jpg",
            "--last-frame",
            "s3://t2v-bucket/inputs/x/b.png",
        ),
        s3=s3,
    )
    assert body["media"] == [
        {"type": "first_frame", "url": "https://e.test/a.jpg"},
        {"type": "last_frame", "url": "s3://t2v-bucket/inputs/x/b.png"},
    ]
    assert s3.puts == []


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ("--model", "pixverse-v5.6-it2v", "--image", "https://e.test/a.jpg", "--size", "640*360"),
            "size: not a field of pixverse/pixverse-v5.6-it2v; use resolution",
        ),
        (
            ("--model", "pixverse-v5.6-it2v", "--image", "https://e.test/a.jpg", "--resolution", "4K"),
            "resolution: '4K' is not one of 360P",
        ),
        (("x", "--model", "kf2v", "--image", "https://e.test/a.jpg"), "needs a last frame"),
        (
            ("--model", "kf2v", "--image", "https://e.test/a.jpg", "--last-frame", "https://e.test/b.jpg"),
            "prompt: pixverse/pixverse-v5.6-kf2v needs a prompt",
        ),
        (("x", "--model", "t2v", "--image", "https://e.test/a.jpg"), "takes no images"),
        (("x", "--model", "wan-2"), "model: no model 'wan-2'; known: pixverse/pixverse-v5.6-t2v"),
        (("x", "--image", "https://e.test/a.jpg"), "need --model (one of: pixverse/pixverse-v5.6-it2v"),
        (("--model", "pixverse-v5.6-it2v", "--image", "http://e.test/a.jpg"), "only https://"),
    ],
)
def test_what_the_model_cannot_take_is_refused_before_any_upload(argv: tuple[str, ...], said: str) -> None:
    s3 = FakeS3()
    with pytest.raises(CliError) as refused:
        body_of(args(*argv), s3=s3)
    assert said in str(refused.value)
    assert refused.value.code == ExitCode.INVALID
    assert s3.puts == []


def test_an_image_is_checked_by_its_bytes_not_its_name(tmp_path: Path) -> None:
    fake = tmp_path / "photo.png"
    fake.write_text("not a picture")
    s3 = FakeS3()
    with pytest.raises(CliError, match=r"photo.png: not an image its bytes show; accepted: JPEG, PNG, WEBP"):
        body_of(args("--model", "pixverse-v5.6-it2v", "--image", str(fake)), s3=s3)
    big = dict(MODELS)
    big["models"] = [dict(m, image_limits={"formats": ["JPG"], "max_bytes": 10}) for m in MODELS["models"]]
    (tmp_path / "cat.jpg").write_bytes(JPEG)
    with pytest.raises(CliError, match=r"cat.jpg: 68 bytes is over the limit of 10 bytes"):
        body_of(args("--model", "pixverse-v5.6-it2v", "--image", str(tmp_path / "cat.jpg")), FakeApi(big), s3)
    assert s3.puts == []


def test_an_unreachable_or_old_api_is_a_clear_error() -> None:
    with pytest.raises(CliError, match=r"cannot list the models \(GET /v1/models\): HTTP 404"):
        body_of(
            args("x", "--model", "pixverse-v5.6-it2v"),
            FakeApi({"error": {"code": "NotFound", "message": "no"}}, 404),
        )

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with ApiClient(TARGET, transport=httpx.MockTransport(refuse)) as client, pytest.raises(CliError) as down:
        client.models()
    assert down.value.code == ExitCode.UNREACHABLE
    assert "cannot list the models" in str(down.value)


def test_the_catalog_finds_models_and_lists_their_fields() -> None:
    catalog = parse_catalog(MODELS)
    assert catalog.default is not None and catalog.default.family == "t2v"
    assert catalog.find("pixverse-v5.6-it2v").model == "pixverse/pixverse-v5.6-it2v"
    assert [p.name for p in catalog.find("kf2v").parameters] == [
        "resolution",
        "duration",
        "audio",
        "watermark",
        "seed",
    ]
    assert catalog.find("kf2v").model == "pixverse/pixverse-v5.6-kf2v"  # a family of one model
    with pytest.raises(
        ModelsError,
        match=r"'it2v' names several models \(pixverse/pixverse-v5.6-it2v, pixverse/pixverse-v6-it2v\)",
    ):
        catalog.find("it2v")
    with pytest.raises(ModelsError):
        parse_catalog({"nope": 1})


def test_t2v_models_prints_each_family_with_its_fields(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from t2v_sandbox import commands_user

    real = commands_user.ApiClient
    monkeypatch.setattr(commands_user, "resolve_target", lambda _: TARGET)
    monkeypatch.setattr(
        commands_user, "ApiClient", lambda t: real(t, transport=httpx.MockTransport(FakeApi()))
    )
    parsed = cli.build_parser().parse_args(["models"])
    assert parsed.func(parsed) == 0
    out = capsys.readouterr().out
    assert "pixverse/pixverse-v5.6-t2v  family t2v (default)" in out
    assert "resolution  string; optional; one of 360P, 540P, 720P, 1080P; default 720P" in out
    assert "media       last_frame (required)" in out
    assert (
        "images      JPEG, PNG, WEBP; at most 20 MiB; max side 10000; max pixels 100000000; not confirmed"
        in out
    )


def test_sniff_and_keys() -> None:
    assert [sniff(PNG), sniff(JPEG), sniff(b"RIFF\0\0\0\0WEBPVP8 "), sniff(b"GIF89a"), sniff(b"hello")] == [
        "png",
        "jpeg",
        "webp",
        "gif",
        None,
    ]
    assert check_image("a", PNG, parse_catalog(MODELS).find("pixverse-v5.6-it2v").image_limits) == "png"
    key = image_key("inputs/f/", "../../etc/pass wd.jpeg", JPEG, "jpeg")
    assert key.startswith("inputs/f/") and key.endswith("-pass-wd.jpg") and ".." not in key
