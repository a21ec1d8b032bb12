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
