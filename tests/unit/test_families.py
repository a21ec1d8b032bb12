"""The registry of model families: dispatch on `model`, each family's own rules, refusals that
name the field and the model, the schedule's keys, and GET /v1/models's description."""

from __future__ import annotations

import json
from typing import Any

import pytest
from t2v.errors import UnknownTierError
from t2v.families import FAMILIES, REGISTRY, describe_models, parse_request, tier_of
from t2v.families.it2v import ImageToVideoRequest
from t2v.families.kf2v import KeyframesRequest
from t2v.request import DEFAULT_MODEL, InvalidRequestError, VideoRequest

IT2V = "pixverse/pixverse-v5.6-it2v"
KF2V = "pixverse/pixverse-v5.6-kf2v"
FIRST = {"type": "first_frame", "url": "https://example.com/a.png"}
LAST = {"type": "last_frame", "url": "s3://bucket/inputs/me/b.webp"}
IMAGE = {"type": "image_url", "url": "https://example.com/a.jpg"}


def refused(data: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, str]:
    with pytest.raises(InvalidRequestError) as raised:
        parse_request(data, defaults)
    return {e.field: e.message for e in raised.value.errors}


def test_without_a_model_a_request_is_text_to_video_as_before() -> None:
    request = parse_request({"prompt": "a cat"}, {"size": "640*360", "duration": 5})

    assert isinstance(request, VideoRequest)
    assert request.model_dump(exclude_none=True) == {
        "prompt": "a cat",
        "size": "640*360",
        "duration": 5,
        "audio": False,
        "watermark": False,
        "model": DEFAULT_MODEL,
    }
    assert tier_of(request.model_dump()).key == "360P/5s/silent"  # learned timings keep their keys


def test_it2v_dispatches_on_model_and_builds_the_providers_body() -> None:
    # Given a deployment default size: it never lands on an image family's request
    request = parse_request(
        {"model": IT2V, "prompt": "waves", "media": [IMAGE], "seed": 7}, {"size": "640*360"}
    )

    assert isinstance(request, ImageToVideoRequest)
    assert request.to_provider_body({IMAGE["url"]: "https://signed"}) == {
        "model": IT2V,
        "input": {"prompt": "waves", "media": [{"type": "image_url", "url": "https://signed"}]},
        "parameters": {"resolution": "720P", "duration": 5, "watermark": False, "seed": 7},
    }
    assert tier_of(request.model_dump(mode="json")).key == "it2v/720P/5s/silent"


def test_it2v_prompt_is_optional_and_kf2v_takes_first_and_last_frames() -> None:
    assert parse_request({"model": IT2V, "media": [IMAGE]}).prompt is None
    request = parse_request({"model": KF2V, "prompt": "p", "media": [LAST, FIRST], "resolution": "1080P"})

    assert isinstance(request, KeyframesRequest)
    assert [m.type for m in request.images] == ["last_frame", "first_frame"]
    assert tier_of(request.model_dump(mode="json")).key == "kf2v/1080P/5s/silent"


def test_size_on_it2v_is_refused_naming_the_field_and_what_to_use() -> None:
    errors = refused({"model": IT2V, "media": [IMAGE], "size": "1280*720"})

    assert "size" in errors
    assert IT2V in errors["size"]
    assert "use resolution" in errors["size"]


def test_a_missing_last_frame_on_kf2v_is_refused_naming_media() -> None:
    errors = refused({"model": KF2V, "prompt": "p", "media": [FIRST]})

    assert list(errors) == ["media"]
    assert "last_frame" in errors["media"]


def test_kf2v_requires_a_prompt_and_media() -> None:
    errors = refused({"model": KF2V})

    assert {"prompt", "media"} <= set(errors)
    assert KF2V in errors["prompt"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"prompt": "p", "resolution": "720P"}, "resolution"),
        ({"prompt": "p", "media": [IMAGE]}, "media"),
        ({"model": "wan2.1-t2v", "prompt": "p"}, "model"),
        ({"model": 5, "prompt": "p"}, "model"),
        ({"model": IT2V, "media": [IMAGE], "resolution": "4K"}, "resolution"),
        ({"model": IT2V, "media": [IMAGE], "resolution": "1080P", "duration": 10}, "duration"),
        ({"model": IT2V, "media": [IMAGE, IMAGE]}, "media"),
        ({"model": IT2V, "media": [FIRST]}, "media"),
        (
            {"model": IT2V, "media": [{"type": "image_url", "url": "http://plain.example/a.png"}]},
            "media.0.url",
        ),
        ({"model": IT2V, "media": [{"type": "image_url", "url": "s3://bucket-only"}]}, "media.0.url"),
        ({"model": IT2V, "media": [{"type": "video_url", "url": "https://a/b"}]}, "media.0.type"),
    ],
)
def test_each_refusal_names_its_field(data: dict[str, Any], field: str) -> None:
    errors = refused(data)

    assert field in errors, errors


def test_a_stored_request_of_an_unknown_model_or_resolution_has_no_tier() -> None:
    with pytest.raises(UnknownTierError, match="model"):
        tier_of({"model": "pixverse/pixverse-v9-t2v", "prompt": "p"})
    with pytest.raises(UnknownTierError, match="resolution"):
        tier_of({"model": IT2V, "resolution": "4K", "duration": 5})


def test_models_are_described_from_the_registry_in_the_agreed_shape() -> None:
    described = json.loads(json.dumps(describe_models()))["models"]

    assert [m["model"] for m in described] == list(REGISTRY) == [f.model for f in FAMILIES]
    assert [m["default"] for m in described] == [True, False, False, False]
    by_family = {m["family"]: m for m in described if "v6" not in m["model"]}
    assert set(by_family) == {"t2v", "it2v", "kf2v"}
    assert by_family["t2v"]["media"] == [] and by_family["t2v"]["image_limits"] is None
    assert "size" in by_family["t2v"]["fields"] and "resolution" not in by_family["t2v"]["fields"]
    it2v = by_family["it2v"]
    assert it2v["media"] == [{"type": "image_url", "required": True}]
    assert it2v["fields"]["media"] == {"type": "media", "required": True}
    assert it2v["fields"]["resolution"]["choices"] == ["360P", "540P", "720P", "1080P"]
    assert it2v["fields"]["prompt"]["required"] is False
    assert by_family["kf2v"]["media"] == [
        {"type": "first_frame", "required": True},
        {"type": "last_frame", "required": True},
    ]
    limits = it2v["image_limits"]
    assert limits["formats"] == ["jpeg", "png", "webp"]
    assert {"max_bytes", "min_side", "max_side", "max_pixels"} <= set(limits)
    assert "max_pixels" in limits["unconfirmed"]
    for model in described:
        for spec in model["fields"].values():
            assert spec["type"] in {"string", "integer", "boolean", "media"}
            assert set(spec) <= {"type", "required", "choices", "default", "min", "max", "max_length"}


def test_a_further_family_is_one_module_v6_it2v() -> None:
    # Given the v6 first-frame model (same shape as v5.6 on DashScope)
    request = parse_request({"model": "pixverse/pixverse-v6-it2v", "media": [IMAGE], "resolution": "540P"})

    assert request.to_provider_body()["model"] == "pixverse/pixverse-v6-it2v"
    # It learns its own timings, apart from v5.6's
    assert tier_of(request.model_dump(mode="json")).key == "v6-it2v/540P/5s/silent"
    # Reseller-only durations (1-15 s) are not taken until DashScope confirms them
    errors = refused({"model": "pixverse/pixverse-v6-it2v", "media": [IMAGE], "duration": 12})
    assert "duration" in errors
