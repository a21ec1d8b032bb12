"""Benchmark 4, cold start: every handler imported from what `sam build` makes, as Lambda imports it.

What is imported is the artifact `sam build` writes (`make bench-build`: the template's own build,
the layer's Makefile included, into .venv/.bench/build): `<Fn>Function/` (the handler) and
`SharedLayer/python/` (the pinned requirements, the t2v package and their bytecode). Built for this
machine's architecture (`T2V_LAYER_ARCH`), so only pydantic_core's and wrapt's compiled extensions
differ from the arm64 build that is deployed.

How Lambda imports it: a fresh interpreter per sample, isolated (`-I`: no PYTHON* variables, no
user site, no current directory), writing no bytecode (`-B`: /var/task and /opt are read-only), the
function's dir and the layer on sys.path as the runtime puts them, and the environment the template
gives the function (Globals + its variables, parameter defaults, placeholder resource names) plus
the variables the runtime sets (LAMBDA_TASK_ROOT and friends: with `Tracing: Active` they make
Powertools' Tracer patch for X-Ray). The child also counts the modules it had to compile from
source (no bytecode beside them): the layer should have none.

The reference is `import dashscope` (the official SDK) shipped the same way: installed with its
dependencies into a directory of its own, compiled to bytecode, imported under the same rules.
A second variant imports every handler with no environment at all, which must keep working.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2v_bench.common import RESULTS_DIR, ROOT, median, pyplot, table, write_json

HANDLERS = ("submit", "status", "finalize", "intake", "api", "park", "callback", "sweeper")
GOAL_RATIO = 0.35  # the slowest handler's import, as a share of `import dashscope` shipped the same way
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
_PSEUDO = {
    "AWS::StackName": "t2v",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/t2v/0b5e52f0-8c3a-11ef-9d1c-0a1b2c3d4e5f",
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}


@dataclass(frozen=True)
class Import:
    self_us: int
    cumulative_us: int
    depth: int
    name: str


def parse_importtime(stderr: str) -> list[Import]:
    rows = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if m:
            rows.append(Import(int(m[1]), int(m[2]), len(m[3]) // 2, m[4]))
    return rows


def template_env(
    function: str, template: Path = ROOT / "template.yaml", *, task_root: Path | None = None
) -> dict[str, str]:
    """Globals + the function's Environment.Variables, with parameter defaults resolved."""
    from t2v_sandbox.intrinsics import Resolver
    from t2v_sandbox.template import load_template

    data = load_template(template)
    params = {k: str(v.get("Default", "")) for k, v in data.get("Parameters", {}).items()}
    # The sandbox's resolver, with recognisable placeholders for the resources' names and attributes.
    resolver = Resolver(data, params, _PSEUDO, lambda lid, att: f"bench-{lid}.{att}")
    resolver.refs.update({lid: f"bench-{lid}" for lid in data["Resources"]})
    logical = f"{function.capitalize()}Function"
    props = data["Resources"][logical]["Properties"]
    merged: dict[str, Any] = dict(data["Globals"]["Function"]["Environment"]["Variables"])
    merged.update(props.get("Environment", {}).get("Variables", {}))
    env = {k: str(resolver.resolve(v)) for k, v in merged.items()}
    memory = props.get("MemorySize", data["Globals"]["Function"].get("MemorySize", 128))
    # What the Lambda runtime adds (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
    env.update(
        {
            "LAMBDA_TASK_ROOT": str(task_root or ROOT / "functions" / function),
            "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "AWS_LAMBDA_FUNCTION_NAME": f"t2v-{logical}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "_HANDLER": "app.lambda_handler",
            "TZ": ":UTC",
        }
    )
    return env


# The child times its import in CPU seconds too: wall time on a shared 2-core machine is noisy.
_CHILD = """
import json, os, sys, time
paths = {paths!r}
sys.path[0:0] = paths
c, w = time.process_time(), time.perf_counter()
import {module}
c1, w1 = time.process_time(), time.perf_counter()
{then}
c2 = time.process_time()
# Modules of the shipped dirs imported from source: their bytecode file does not exist.
from_source = sorted(
    m.__spec__.origin for m in list(sys.modules.values())
    if getattr(m, "__spec__", None) is not None and m.__spec__.origin and m.__spec__.cached
    and m.__spec__.origin.startswith(tuple(paths)) and not os.path.exists(m.__spec__.cached)
)
print(json.dumps({{"cpu_ms": (c1 - c) * 1000, "wall_ms": (w1 - w) * 1000, "then_cpu_ms": (c2 - c1) * 1000,
                  "from_source": from_source}}))
"""
# What every handler does first when invoked: build its DynamoDB table resource (no request is sent).
_FIRST_CLIENT = "import boto3; boto3.resource('dynamodb', region_name='us-east-1').Table('t')"
BENCH_DIR = ROOT / ".venv" / ".bench"


@dataclass(frozen=True)
class Env:
    """What a child imports: sam build's output and the compiled reference, or the source tree."""

    python: str = sys.executable
    build_dir: Path | None = None  # None: functions/ and layers/shared/ from source, packages from .venv
    reference_dir: Path | None = None  # dashscope and its dependencies, compiled (None: from .venv)

    @classmethod
    def built(cls, bench_dir: Path = BENCH_DIR) -> Env:
        bench_dir = bench_dir.absolute()  # children run in other directories
        python = bench_dir / "python" / "bin" / "python"
        build, reference = bench_dir / "build", bench_dir / "dashscope" / "python"
        missing = [p for p in (python, build / "SharedLayer" / "python", reference) if not p.exists()]
        if missing:
            raise SystemExit(f"missing {', '.join(map(str, missing))}: run `make bench-build` first")
        return cls(str(python), build, reference)

    def code_dir(self, function: str) -> Path:
        if self.build_dir is None:
            return ROOT / "functions" / function
        return self.build_dir / f"{function.capitalize()}Function"

    def paths(self, function: str | None) -> list[str]:
        """sys.path entries in front, as Lambda's runtime orders them: task root, then the layer."""
        if function is None:
            return [str(self.reference_dir)] if self.reference_dir else []
        layer = self.build_dir / "SharedLayer" / "python" if self.build_dir else ROOT / "layers" / "shared"
        return [str(self.code_dir(function)), str(layer)]


@dataclass(frozen=True)
class Sample:
    imports: list[Import]
    cpu_ms: float
    wall_ms: float
    then_cpu_ms: float
    from_source: list[str]


def measure(function: str | None, *, lambda_env: bool, env_kind: Env | None = None) -> Sample:
    """One fresh interpreter importing the handler (or `dashscope` when function is None)."""
    where = env_kind or Env()
    if function is None:
        code_dir, module, then, env = ROOT, "dashscope", "", {}
    else:
        code_dir = where.code_dir(function)
        module, then = "app", _FIRST_CLIENT
        env = template_env(function, task_root=code_dir) if lambda_env else {}
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    child = _CHILD.format(paths=where.paths(function), module=module, then=then)
    done = subprocess.run(
        [where.python, "-I", "-B", "-X", "importtime", "-c", child],
        cwd=code_dir,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {function or 'dashscope'} failed:\n{done.stderr[-2000:]}")
    timing = json.loads(done.stdout.strip().splitlines()[-1])
    return Sample(
        parse_importtime(done.stderr),
        timing["cpu_ms"],
        timing["wall_ms"],
        timing["then_cpu_ms"],
        timing["from_source"],
    )


def summarise(samples: list[Sample], top_name: str) -> dict[str, Any]:
    """Medians over the runs: the top import's self and cumulative time, CPU time, the costliest modules."""
    runs = [s.imports for s in samples]
    tops = [next(r for r in run if r.name == top_name and r.depth == 0) for run in runs]
    selfs: dict[str, list[int]] = {}
    children: dict[str, list[int]] = {}
    for run in runs:
        for row in run:
            selfs.setdefault(row.name, []).append(row.self_us)
            if row.depth == 1:
                children.setdefault(row.name, []).append(row.cumulative_us)
    by_self = sorted(((median(v) / 1000, k) for k, v in selfs.items()), reverse=True)[:8]
    by_child = sorted(((median(v) / 1000, k) for k, v in children.items()), reverse=True)[:8]
    cumulative = [t.cumulative_us / 1000 for t in tops]
    return {
        "self_ms": round(median([t.self_us / 1000 for t in tops]), 1),
        "cumulative_ms": round(median(cumulative), 1),
        "min_ms": round(min(cumulative), 1),
        "max_ms": round(max(cumulative), 1),
        "runs_ms": [round(c, 1) for c in cumulative],
        "cpu_ms": round(median([s.cpu_ms for s in samples]), 1),
        "first_client_cpu_ms": round(median([s.then_cpu_ms for s in samples]), 1),
        "modules": len(runs[0]),
        "top_self_ms": [{"module": k, "ms": round(v, 1)} for v, k in by_self],
        "top_direct_imports_ms": [{"module": k, "ms": round(v, 1)} for v, k in by_child],
        "from_source": max(len(s.from_source) for s in samples),
        "from_source_examples": [Path(p).name for p in samples[0].from_source[:5]],
    }


def run(
    repeat: int = 7,
    handlers: Sequence[str] = HANDLERS,
    out_dir: Path = RESULTS_DIR,
    *,
    where: Env | None = None,
    reference: bool = True,
) -> dict[str, Any]:
    where = where or Env.built()
    results: dict[str, Any] = {"lambda_env": {}, "no_env": {}}
    # Interleave handlers, variants and the reference so a burst of load elsewhere spreads over all.
    samples: dict[tuple[str, str], list[Sample]] = {}
    for _ in range(repeat):
        for name in handlers:
            for variant in results:
                lam = variant == "lambda_env"
                samples.setdefault((variant, name), []).append(measure(name, lambda_env=lam, env_kind=where))
        if reference:
            samples.setdefault(("reference", "dashscope"), []).append(
                measure(None, lambda_env=False, env_kind=where)
            )
    for (variant, name), got in samples.items():
        results.setdefault(variant, {})[name] = summarise(got, "app" if variant != "reference" else name)
    data: dict[str, Any] = {
        "benchmark": "coldstart",
        "goal_ratio": GOAL_RATIO,
        "repeat": repeat,
        "interpreter": where.python,
        "build_dir": str(where.build_dir) if where.build_dir else "source tree + .venv",
        "reference_dir": str(where.reference_dir) if where.reference_dir else ".venv",
        "results": results,
    }
    ref = results.get("reference", {}).get("dashscope")
    if ref:
        # CPU time judges the goal: on a shared machine it is far less disturbed than wall time.
        # The fastest wall time of each (the run least disturbed) is reported beside it.
        timed: list[dict[str, Any]] = list(results["lambda_env"].values())
        data["slowest_over_reference"] = round(max(r["cpu_ms"] for r in timed) / ref["cpu_ms"], 3)
        data["slowest_over_reference_min_wall"] = round(max(r["min_ms"] for r in timed) / ref["min_ms"], 3)
    write_json("coldstart", data, out_dir)
    _plot(results, out_dir / "coldstart.png")
    print(report(data))
    return data


def report(data: dict[str, Any]) -> str:
    results, goal = data["results"], data["goal_ratio"]
    ref = results.get("reference", {}).get("dashscope")
    rows = []
    for name, lam in results["lambda_env"].items():
        bare = results["no_env"][name]
        worst = ", ".join(f"{m['module']} {m['ms']:.0f}" for m in lam["top_direct_imports_ms"][:3])
        ratio = lam["cpu_ms"] / ref["cpu_ms"] if ref else float("nan")
        wall_ratio = lam["min_ms"] / ref["min_ms"] if ref else float("nan")
        rows.append(
            [
                name,
                lam["cumulative_ms"],
                f"{lam['min_ms']:.0f}–{lam['max_ms']:.0f}",
                lam["cpu_ms"],
                f"{ratio:.2f}" + ("" if not ref else " ✓" if ratio <= goal else " ✗"),
                f"{wall_ratio:.2f}",
                bare["cumulative_ms"],
                lam["first_client_cpu_ms"],
                lam["from_source"],
                worst,
            ]
        )
    if ref:
        worst = ", ".join(f"{m['module']} {m['ms']:.0f}" for m in ref["top_direct_imports_ms"][:3])
        rows.append(
            [
                "import dashscope",
                ref["cumulative_ms"],
                f"{ref['min_ms']:.0f}–{ref['max_ms']:.0f}",
                ref["cpu_ms"],
                "1.00",
                "1.00",
                "",
                "",
                ref["from_source"],
                worst,
            ]
        )
    headers = [
        "handler",
        "import ms (median)",
        "range ms",
        "CPU ms",
        f"CPU × dashscope (goal ≤ {goal})",
        "fastest × dashscope's",
        "no-env ms",
        "+1st client CPU ms",
        "from source",
        "largest direct imports (ms)",
    ]
    title = (
        f"Cold start: import (-X importtime cumulative; CPU time) of {data['build_dir']}, median of "
        f"{data['repeat']} fresh `python -I -B` processes, template + Lambda runtime env"
    )
    return title + "\n" + table(headers, rows)


def _plot(results: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    names = list(results["lambda_env"])
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = list(range(len(names)))
    lam = [results["lambda_env"][n]["cumulative_ms"] for n in names]
    bare = [results["no_env"][n]["cumulative_ms"] for n in names]
    ax.bar([x - 0.2 for x in xs], lam, 0.4, label="template + Lambda env (X-Ray on)")
    ax.bar([x + 0.2 for x in xs], bare, 0.4, label="no env")
    ref = results.get("reference", {}).get("dashscope")
    if ref:
        ax.axhline(ref["cumulative_ms"], color="grey", linestyle=":", label="import dashscope")
        goal = GOAL_RATIO * ref["cumulative_ms"]
        ax.axhline(goal, color="red", linestyle="--", label=f"goal {GOAL_RATIO} × dashscope ({goal:.0f} ms)")
    ax.set_xticks(xs, names)
    ax.set_ylabel("import time, ms (median)")
    ax.set_title("Handler cold start from the sam build artifact")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="t2v_bench.coldstart", description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--handlers", nargs="*", default=list(HANDLERS))
    parser.add_argument("--bench-dir", type=Path, default=BENCH_DIR, help="see `make bench-build`")
    parser.add_argument(
        "--source", action="store_true", help="import the source tree from .venv instead of the build"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when the goal is missed")
    args = parser.parse_args(argv)
    where = Env() if args.source else Env.built(args.bench_dir)
    data = run(args.repeat, args.handlers, args.out, where=where)
    missed = data.get("slowest_over_reference", 0) > GOAL_RATIO
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
