"""The README's deploy commands, checked without AWS: every `t2v`, `make` and `sam` command of
"Deploying to AWS" takes the flags it is given (the `t2v` parser itself, the Makefile's targets
and variables, SAM CLI 1.170.0's options, the template's parameters), `samconfig.toml` holds only
options its commands accept, and the region is written in one place (samconfig.toml) and read
from there by the README's `REGION=...` line.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib

import pytest
from t2v_sandbox.template import load_template

from tests.conftest import ROOT
from tests.readme import README, Command, bash_blocks, commands, section, t2v_commands, t2v_parser

MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
PARAMETERS = set(load_template(ROOT / "template.yaml")["Parameters"])
# `t2v` commands the README documents ahead of their arrival in the same release; checked once they exist.
PENDING_T2V = frozenset({"upload"})


def options(words: str) -> frozenset[str]:
    return frozenset(words.split())


# The options of the pinned SAM CLI (`sam <command> --help`, 1.170.0) the README or samconfig.toml may use.
SAM_OPTIONS: dict[str, frozenset[str]] = {
    "build": options(
        "--base-dir --build-dir --cache-dir --cached --no-cached --config-env --config-file --debug "
        "--parallel --parameter-overrides --profile --region --template --template-file -b -c -p -t -u "
        "--use-container --no-use-container"
    ),
    "deploy": options(
        "--capabilities --config-env --config-file --confirm-changeset --no-confirm-changeset --debug "
        "--disable-rollback --no-disable-rollback --fail-on-empty-changeset --no-fail-on-empty-changeset "
        "--force-upload --guided -g --no-execute-changeset --notification-arns --parameter-overrides "
        "--profile --region --resolve-s3 --no-resolve-s3 --role-arn --s3-bucket --s3-prefix --stack-name "
        "--tags --template --template-file -t --max-wait-duration --no-progressbar"
    ),
    "validate": options("--lint --config-env --config-file --debug --profile --region --template -t"),
    "logs": options(
        "--stack-name --name -n --tail -t --start-time -s --end-time -e --filter --include-traces -i "
        "--cw-log-group --region --profile --config-env --config-file --debug"
    ),
    "traces": options(
        "--start-time -s --end-time -e --tail -t --trace-id --region --profile --config-env "
        "--config-file --debug"
    ),
    "delete": options(
        "--stack-name --no-prompts --s3-bucket --s3-prefix --region --profile --config-env "
        "--config-file --debug"
    ),
}
AWS_REGION = re.compile(
    r"\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)-(?:gov-|iso-)?"
    r"(?:east|west|north|south|central|northeast|northwest|southeast|southwest)-\d\b"
)
# AWS CLI services that need no region of the stack's: global ones, and S3 (which finds the bucket's).
REGIONLESS_AWS = frozenset({"sts", "iam", "s3", "s3api", "configure"})


DEPLOY = commands(section("Deploying to AWS"))
EVERYWHERE = commands(README)


def named(program: str, found: list[Command]) -> list[Command]:
    return [c for c in found if c.argv[0].rsplit("/", 1)[-1] == program]


def sam_check(subcommand: str, args: list[str]) -> list[str]:
    """What is wrong with `sam <subcommand> <args>`: unknown options, parameters the template lacks."""
    problems = [
        f"sam {subcommand}: unknown option {a}"
        for a in args
        if a.startswith("-") and a not in SAM_OPTIONS[subcommand]
    ]
    if "--parameter-overrides" in args:
        for override in args[args.index("--parameter-overrides") + 1 :]:
            if override.startswith("-"):
                break
            name = override.split("=", 1)[0]
            if name not in PARAMETERS:
                problems.append(f"sam {subcommand}: template.yaml has no parameter {name}")
    return problems


def test_the_deploy_section_has_commands_of_every_kind() -> None:
    programs = {c.argv[0].rsplit("/", 1)[-1] for c in DEPLOY}
    assert {"t2v", "make", "sam", "aws"} <= programs


@pytest.mark.parametrize("command", named("t2v", DEPLOY), ids=lambda c: " ".join(c.argv[1:3]))
def test_each_t2v_command_parses(command: Command) -> None:
    args = command.argv[1:]
    if args[0] not in t2v_commands():
        assert args[0] in PENDING_T2V, f"t2v has no command {args[0]!r}: {command.line}"
        pytest.skip(f"`t2v {args[0]}` is documented ahead of its arrival (PENDING_T2V)")
    try:
        parsed = t2v_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"t2v refuses: {command.line}")
    assert parsed.command == args[0]


def test_every_t2v_command_on_a_stack_names_the_region() -> None:
    # t2v's --region defaults to the AWS chain's, which need not be the stack's (samconfig.toml's).
    missing = [c.line for c in named("t2v", EVERYWHERE) if "--stack" in c.argv and "--region" not in c.argv]
    assert missing == []


@pytest.mark.parametrize("command", named("make", DEPLOY), ids=lambda c: " ".join(c.argv[1:2]))
def test_each_make_command_uses_real_targets_and_variables(command: Command) -> None:
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", MAKEFILE, flags=re.MULTILINE))
    for word in command.argv[1:]:
        if "=" in word:
            variable, value = word.split("=", 1)
            assert f"$({variable})" in MAKEFILE, f"the Makefile reads no {variable}: {command.line}"
            if variable == "DEPLOY_ARGS":  # appended to `sam deploy`
                assert sam_check("deploy", shlex.split(value)) == []
        else:
            assert word in targets, f"no make target {word!r}: {command.line}"


@pytest.mark.parametrize("command", named("sam", DEPLOY), ids=lambda c: " ".join(c.argv[1:2]))
def test_each_sam_command_uses_options_the_pinned_sam_takes(command: Command) -> None:
    assert command.argv[0] == ".venv-sam/bin/sam", (
        "the README runs the pinned SAM CLI (make build installs it)"
    )
    assert sam_check(command.argv[1], command.argv[2:]) == []


def test_the_makefile_pins_the_sam_cli_these_options_come_from() -> None:
    assert "SAM_VERSION := 1.170.0" in MAKEFILE


@pytest.mark.parametrize(
    ("section_name", "key"), [(s, k) for s, p in SAMCONFIG["default"].items() for k in p["parameters"]]
)
def test_samconfig_holds_only_options_its_commands_take(section_name: str, key: str) -> None:
    option = "--" + key.replace("_", "-")
    takers = ["deploy", "logs", "delete"] if section_name == "global" else [section_name]
    assert [t for t in takers if option not in SAM_OPTIONS[t]] == [], f"[default.{section_name}] {key}"


def test_confirm_changeset_is_documented_with_its_ci_switch() -> None:
    assert SAMCONFIG["default"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert "--no-confirm-changeset" in section("Deploying to AWS")


def test_the_first_deploy_sets_owner_and_admin_from_sts() -> None:
    first = section("Deploying to AWS").split("### First deploy in five lines", 1)[1].split("\n### ", 1)[0]
    block = bash_blocks(first)[1]  # the first block is the once-only setup
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) == 5
    assert "aws sts get-caller-identity --query Arn --output text" in lines[0]
    assert "PromptJobOwner=$ME" in lines[1] and "AdminPrincipals=$ME" in lines[1]
    assert "submit" in lines[2] and "--wait" in lines[2]
    assert "upload" in lines[3] and " list " in lines[3] + " "
    assert "teardown" in lines[4]


def test_no_region_is_written_outside_samconfig() -> None:
    # A line may name a region only where it speaks of samconfig.toml or of the price list's region.
    offending = [
        line
        for line in README.splitlines()
        if AWS_REGION.search(line) and "samconfig.toml" not in line and "prices.py" not in line
    ]
    assert offending == []


def test_every_regional_aws_command_takes_the_region_read_once() -> None:
    missing = [
        c.line
        for c in named("aws", EVERYWHERE)
        if c.argv[1] not in REGIONLESS_AWS and "--endpoint-url" not in c.argv and "--region" not in c.argv
    ]
    assert missing == []
    regions = {c.argv[c.argv.index("--region") + 1] for c in named("aws", DEPLOY) if "--region" in c.argv}
    assert regions == {"$REGION"}


def test_the_readme_reads_the_region_from_samconfig() -> None:
    (line,) = {line for line in README.splitlines() if line.startswith("REGION=")}
    # When the README's own line runs in the repository's root, Then it prints samconfig.toml's region
    shown = subprocess.run(
        ["bash", "-c", f'{line}\nprintf %s "$REGION"'], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert shown == SAMCONFIG["default"]["global"]["parameters"]["region"]


def test_one_stack_name_throughout() -> None:
    stack = SAMCONFIG["default"]["global"]["parameters"]["stack_name"]
    named_stacks = {c.argv[c.argv.index("--stack") + 1] for c in EVERYWHERE if "--stack" in c.argv}
    named_stacks |= {
        c.argv[c.argv.index("--stack-name") + 1]
        for c in EVERYWHERE
        if "--stack-name" in c.argv and "aws-sam-cli-managed-default" not in c.argv
    }
    assert named_stacks == {stack}
