"""Benchmark 4, cold start: import time of every handler module in a fresh `python -X importtime`.

Each handler is imported the way Lambda imports it: a bare interpreter (no site-packages) with
its code dir, the shared layer and the layer's pinned requirements (`pip install --target`, as
`sam build` does; `make bench-env` builds it under .venv/.bench/) on the path, so the dev-only
packages of .venv (httpx's CLI extras, requests, ...) are not imported by accident; the environment `template.yaml` gives the function (Globals + its own variables, parameter
defaults, placeholder names for resources) plus the variables the Lambda runtime itself sets
(LAMBDA_TASK_ROOT and friends: with `Tracing: Active` they make Powertools' Tracer patch for
X-Ray). A second variant imports with no environment at all, which must keep working. The
reference is `import dashscope`, the official SDK.
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

HANDLERS = ("submit", "status", "finalize", "intake", "api")
GOAL_MS = 300.0
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


def template_env(function: str, template: Path = ROOT / "template.yaml") -> dict[str, str]:
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
            "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
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
import json, sys, time
c, w = time.process_time(), time.perf_counter()
import {module}
c1, w1 = time.process_time(), time.perf_counter()
{then}
c2 = time.process_time()
print(json.dumps({{"cpu_ms": (c1 - c) * 1000, "wall_ms": (w1 - w) * 1000, "then_cpu_ms": (c2 - c1) * 1000}}))
"""
# What every handler does first when invoked: build its DynamoDB table resource (no request is sent).
_FIRST_CLIENT = "import boto3; boto3.resource('dynamodb', region_name='us-east-1').Table('t')"


@dataclass(frozen=True)
class Env:
    """Where a child interpreter finds packages: a bare venv + the layer's requirements, or .venv."""

    python: str = sys.executable
    site: tuple[str, ...] = ()

    @classmethod
    def lambda_like(cls, bench_dir: Path = ROOT / ".venv" / ".bench") -> Env:
        bench_dir = bench_dir.absolute()  # children run in other directories
        python, layer = bench_dir / "python" / "bin" / "python", bench_dir / "layer"
        if not python.exists() or not layer.is_dir():
            raise SystemExit(f"no Lambda-like environment under {bench_dir}: run `make bench-env` first")
        return cls(str(python), (str(layer),))


@dataclass(frozen=True)
class Sample:
    imports: list[Import]
    cpu_ms: float
    wall_ms: float
    then_cpu_ms: float


def measure(function: str | None, *, lambda_env: bool, env_kind: Env | None = None) -> Sample:
    """One fresh interpreter importing the handler (or `dashscope` when function is None)."""
    where = env_kind or Env()
    layer = ROOT / "layers" / "shared"
    if function is None:
        code_dir, module, then, env = ROOT, "dashscope", "", {}
    else:
        code_dir = ROOT / "functions" / function
        module, then, env = "app", _FIRST_CLIENT, (template_env(function) if lambda_env else {})
    base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    paths = [str(code_dir), str(layer), *where.site]
    env = {**base, **env, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(
        [where.python, "-X", "importtime", "-c", _CHILD.format(module=module, then=then)],
        cwd=code_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {function or 'dashscope'} failed:\n{done.stderr[-2000:]}")
    timing = json.loads(done.stdout.strip().splitlines()[-1])
    return Sample(parse_importtime(done.stderr), timing["cpu_ms"], timing["wall_ms"], timing["then_cpu_ms"])


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
    }


def run(
    repeat: int = 7,
    handlers: Sequence[str] = HANDLERS,
    out_dir: Path = RESULTS_DIR,
    *,
    where: Env | None = None,
    reference: bool = True,
) -> dict[str, Any]:
    where = where or Env.lambda_like()
    results: dict[str, Any] = {"lambda_env": {}, "no_env": {}}
    # Interleave handlers and variants so a burst of load elsewhere spreads over all of them.
    samples: dict[tuple[str, str], list[Sample]] = {}
    for _ in range(repeat):
        for name in handlers:
            for variant in results:
                lam = variant == "lambda_env"
                samples.setdefault((variant, name), []).append(measure(name, lambda_env=lam, env_kind=where))
    for (variant, name), got in samples.items():
        results[variant][name] = summarise(got, "app")
    if reference:
        # The SDK is a dev dependency only: measured in .venv.
        ref = [measure(None, lambda_env=False) for _ in range(repeat)]
        results["reference"] = {"dashscope": summarise(ref, "dashscope")}
    data = {
        "benchmark": "coldstart",
        "goal_ms": GOAL_MS,
        "repeat": repeat,
        "interpreter": where.python,
        "site": list(where.site),
        "results": results,
    }
    write_json("coldstart", data, out_dir)
    _plot(results, out_dir / "coldstart.png")
    print(report(data))
    return data


def report(data: dict[str, Any]) -> str:
    results, goal = data["results"], data["goal_ms"]
    rows = []
    for name, lam in results["lambda_env"].items():
        bare = results["no_env"][name]
        worst = ", ".join(f"{m['module']} {m['ms']:.0f}" for m in lam["top_direct_imports_ms"][:3])
        rows.append(
            [
                name,
                lam["cumulative_ms"],
                f"{lam['min_ms']:.0f}–{lam['max_ms']:.0f}",
                lam["self_ms"],
                lam["cpu_ms"],
                bare["cumulative_ms"],
                lam["first_client_cpu_ms"],
                "yes" if lam["cumulative_ms"] <= goal else "NO",
                worst,
            ]
        )
    ref = results.get("reference", {}).get("dashscope")
    if ref:
        worst = ", ".join(f"{m['module']} {m['ms']:.0f}" for m in ref["top_direct_imports_ms"][:3])
        rows.append(
            [
                "import dashscope",
                ref["cumulative_ms"],
                f"{ref['min_ms']:.0f}–{ref['max_ms']:.0f}",
                ref["self_ms"],
                ref["cpu_ms"],
                "",
                "",
                "(reference)",
                worst,
            ]
        )
    headers = [
        "handler",
        "import ms (median)",
        "range ms",
        "self ms",
        "CPU ms",
        "no-env ms",
        "+1st client CPU ms",
        f"≤ {goal:.0f} ms",
        "largest direct imports (ms)",
    ]
    title = (
        f"Cold start: handler import (-X importtime cumulative), median of {data['repeat']} fresh processes, "
        "template + Lambda runtime env"
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
    ax.axhline(GOAL_MS, color="red", linestyle="--", label=f"goal {GOAL_MS:.0f} ms")
    ref = results.get("reference", {}).get("dashscope")
    if ref:
        ax.axhline(
            ref["cumulative_ms"],
            color="grey",
            linestyle=":",
            label=f"import dashscope {ref['cumulative_ms']:.0f} ms",
        )
    ax.set_xticks(xs, names)
    ax.set_ylabel("import time, ms (median)")
    ax.set_title("Handler cold start: module import time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="t2v_bench.coldstart", description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--handlers", nargs="*", default=list(HANDLERS))
    parser.add_argument(
        "--bench-dir", type=Path, default=ROOT / ".venv" / ".bench", help="see `make bench-env`"
    )
    parser.add_argument(
        "--dev-venv", action="store_true", help="import from .venv instead of the Lambda-like env"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    where = Env() if args.dev_venv else Env.lambda_like(args.bench_dir)
    data = run(args.repeat, args.handlers, args.out, where=where)
    over = [n for n, r in data["results"]["lambda_env"].items() if r["cumulative_ms"] > GOAL_MS]
    return 1 if over and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
