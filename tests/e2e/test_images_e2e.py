"""Image-to-video end to end: the real template in the sandbox, it2v and kf2v through the API, a
.jsonl line and an EventBridge event, the emulator fetching the presigned images and rendering from
them; and the refusals before any paid call, each naming the field."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import av
import pytest
from t2v.images import ImagePlace
from t2v_client import ApiClient, Target
from t2v_sandbox.identities import DEFAULT
from t2v_sandbox.user_sandbox import UserSandbox, wait_until

from tests.e2e.sandboxes import emulated_sandbox
from tests.e2e.test_e2e import JOB_TIMEOUT, jobs_where, put_request, tasks_for, unique, wait_terminal
from tests.images import png

IT2V = "pixverse/pixverse-v5.6-it2v"
KF2V = "pixverse/pixverse-v5.6-kf2v"
RED, BLUE = (220, 30, 30), (30, 30, 220)


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserSandbox]:
    yield from emulated_sandbox(tmp_path_factory, "e2e-images", {"PollIntervalSeconds": "1"})


@pytest.fixture(scope="module")
def api(sb: UserSandbox) -> Iterator[ApiClient]:
    creds = sb.session.get_credentials()
    with ApiClient(
        Target(str(sb.endpoints["api_url"]), sb.config.region, creds.get_frozen_credentials())
    ) as client:
        yield client


def bucket(sb: UserSandbox) -> str:
    return str(sb.outputs["OutputBucketName"])


def my_folder(sb: UserSandbox) -> str:
    return ImagePlace(bucket(sb), "inputs/").folder_of(DEFAULT.user_arn)


def put_image(sb: UserSandbox, key: str, data: bytes) -> str:
    sb.client("s3").put_object(Bucket=bucket(sb), Key=key, Body=data)
    return f"s3://{bucket(sb)}/{key}"


def first_and_last_colours(sb: UserSandbox, job: dict[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    data = sb.client("s3").get_object(Bucket=job["s3_bucket"], Key=job["s3_key"])["Body"].read()
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_rgb() for f in container.decode(video=0)]

    def colour(frame: av.VideoFrame) -> tuple[int, ...]:
        plane = bytes(frame.planes[0])
        at = frame.height // 4 * frame.planes[0].line_size + frame.width // 4 * 3
        return tuple(plane[at : at + 3])

    return colour(frames[0]), colour(frames[-1])


def close(seen: tuple[int, ...], want: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(seen, want, strict=True))


def test_it2v_through_the_api_starts_on_the_image(sb: UserSandbox, api: ApiClient) -> None:
    url = put_image(sb, f"{my_folder(sb)}red.png", png(64, 36, RED))
    prompt = unique("e2e it2v api")

    accepted = api.submit(
        {"model": IT2V, "prompt": prompt, "media": [{"type": "image_url", "url": url}], "resolution": "360P"}
    )
    job = wait_terminal(sb, accepted["job_id"])

    assert job["status"] == "SUCCEEDED", job
    first, _ = first_and_last_colours(sb, job)
    assert close(first, RED), first
    assert len(tasks_for(sb, prompt)) == 1
    assert job["usage"]["size"] == "640*360"  # 360P, the 16:9 of the image


def test_kf2v_as_a_jsonl_line_moves_from_the_first_image_to_the_last(sb: UserSandbox) -> None:
    first_url = put_image(sb, "inputs/shared/first.png", png(48, 48, RED))
    last_url = put_image(sb, "inputs/shared/last.png", png(48, 48, BLUE))
    prompt = unique("e2e kf2v jsonl")
    line = {
        "model": KF2V,
        "prompt": prompt,
        "media": [{"type": "first_frame", "url": first_url}, {"type": "last_frame", "url": last_url}],
        "resolution": "360P",
    }
    key = f"prompts/{unique('kf2v').replace(' ', '-')}.jsonl"
    sb.client("s3").put_object(Bucket=bucket(sb), Key=key, Body=json.dumps(line).encode())

    found = wait_until(
        lambda: jobs_where(sb, lambda i: (i.get("origin") or {}).get("key") == key),
        timeout=JOB_TIMEOUT,
        what="the line's job",
    )
    job = wait_terminal(sb, found[0]["pk"])

    assert job["status"] == "SUCCEEDED", job
    first, last = first_and_last_colours(sb, job)
    assert close(first, RED) and close(last, BLUE), (first, last)


def test_it2v_as_an_eventbridge_request_succeeds(sb: UserSandbox) -> None:
    url = put_image(sb, "inputs/events/blue.png", png(36, 64, BLUE))
    job_id = put_request(
        sb,
        {
            "model": IT2V,
            "prompt": unique("e2e it2v event"),
            "media": [{"type": "image_url", "url": url}],
            "resolution": "360P",
        },
    )

    job = wait_terminal(sb, job_id)

    assert job["status"] == "SUCCEEDED", job
    first, _ = first_and_last_colours(sb, job)
    assert close(first, BLUE)


def _png_header(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + header
        + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    )


@pytest.mark.parametrize(
    ("name", "data", "rule"),
    [
        ("text.png", b"I am text with a .png name", "is not a JPEG, PNG, WEBP image"),
        ("huge.png", png(4, 4) + bytes(21 * 1024 * 1024), "over the limit"),
        ("wide.png", _png_header(20_000, 20_000), "at most 10000 px"),
        ("missing.png", None, "NoSuchKey"),
    ],
)
def test_a_bad_image_fails_the_job_before_any_task_naming_it(
    sb: UserSandbox, api: ApiClient, name: str, data: bytes | None, rule: str
) -> None:
    key = f"{my_folder(sb)}{name}"
    url = put_image(sb, key, data) if data is not None else f"s3://{bucket(sb)}/{key}"
    prompt = unique(f"e2e refused {name}")

    accepted = api.submit({"model": IT2V, "prompt": prompt, "media": [{"type": "image_url", "url": url}]})
    job = wait_terminal(sb, accepted["job_id"])

    assert job["status"] == "FAILED"
    message = str(job.get("error_message"))
    assert "media.0.url" in message and name in message and rule in message, message
    assert tasks_for(sb, prompt) == []  # no paid call


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "model": IT2V,
                "size": "640*360",
                "media": [{"type": "image_url", "url": "https://example.com/a.png"}],
            },
            "size",
        ),
        (
            {
                "model": KF2V,
                "prompt": "p",
                "media": [{"type": "first_frame", "url": "https://example.com/a.png"}],
            },
            "media",
        ),
        (
            {"model": IT2V, "media": [{"type": "image_url", "url": "s3://another-bucket/inputs/a.png"}]},
            "media.0.url",
        ),
    ],
)
def test_a_request_breaking_a_family_rule_is_400_naming_the_field(
    api: ApiClient, body: dict[str, Any], field: str
) -> None:
    answer = api.call("POST", "/videos", json_body=body)

    assert answer.status == 400
    assert [f["field"] for f in answer.body["error"]["fields"]] == [field]
