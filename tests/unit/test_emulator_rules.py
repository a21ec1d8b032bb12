"""The emulator keeps its own copy of the provider's rules; the project's request model must agree."""

from __future__ import annotations

import ast

from dashscope_emulator import rules
from t2v.families import REGISTRY
from t2v.request import DURATIONS, MAX_PROMPT_CHARS, MAX_SEED, SIZES, output_size

from tests.conftest import ROOT


def test_both_copies_of_the_provider_rules_agree() -> None:
    assert {size: spec.tier for size, spec in SIZES.items()} == rules.SIZE_TIERS
    assert {str(tier): allowed for tier, allowed in DURATIONS.items()} == rules.TIER_DURATIONS
    text_models = {model for model, family in REGISTRY.items() if family.family == "t2v"}
    assert (MAX_PROMPT_CHARS, MAX_SEED, text_models) == (
        rules.PROMPT_MAX_CHARS,
        rules.SEED_MAX,
        set(rules.MODELS),
    )
    for size, tier in rules.SIZE_TIERS.items():
        for duration in rules.TIER_DURATIONS[tier]:
            assert output_size(size, duration) == rules.delivered_size(size, duration)


def imported_modules(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_emulator_imports_nothing_of_the_project() -> None:
    for path in sorted((ROOT / "tools" / "dashscope_emulator").glob("*.py")):
        modules = imported_modules(path.read_text(encoding="utf-8"))
        assert not {m for m in modules if m.split(".")[0] == "t2v"}, path.name


def test_both_copies_of_the_image_families_agree() -> None:
    from t2v.families import REGISTRY as FAMILIES
    from t2v.families.base import RESOLUTIONS

    images = {model: f for model, f in FAMILIES.items() if f.media}
    assert set(images) == set(rules.IMAGE_MODELS)
    for model, family in images.items():
        assert tuple(slot.type for slot in family.media) == rules.IMAGE_MODELS[model]
        assert (not family.fields["prompt"]["required"]) is (model in rules.PROMPT_OPTIONAL)
    assert RESOLUTIONS == rules.RESOLUTIONS
    assert max(f.image_limits.max_bytes for f in images.values() if f.image_limits) == rules.IMAGE_MAX_BYTES


def test_an_image_clip_takes_the_size_of_its_tier_closest_to_the_first_images_aspect() -> None:
    assert rules.image_output_size("720P", 1600, 900) == "1280*720"
    assert rules.image_output_size("360P", 900, 1600) == "360*640"
    assert rules.image_output_size("1080P", 500, 500) == "1808*1808"
    assert rules.image_output_size("540P", 1200, 900) == "1024*768"
