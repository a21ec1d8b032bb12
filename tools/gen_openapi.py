"""Write docs/openapi.json from the API's routes (`--check`: fail when the committed file is stale).

Usage: .venv/bin/python tools/gen_openapi.py [--check]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "openapi.json"


def render() -> str:
    """The document from the routes, pretty and sorted, without the resolver's automatic 422 answers
    (the API maps every validation error to 400)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    api = importlib.import_module("functions.api.app")
    schema = json.loads(
        api.app.get_openapi_json_schema(title="Text-to-video API", version="1.0.0", description=api.__doc__)
    )
    for operation in (op for path in schema["paths"].values() for op in path.values()):
        operation["responses"].pop("422", None)
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schema["components"]["schemas"].pop(name, None)  # referenced only by those 422s
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/openapi.json is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale; run: .venv/bin/python tools/gen_openapi.py")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
