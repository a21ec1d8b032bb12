"""The sandbox's identities: who each key pair is, how `t2v --as`, T2V_IDENTITY and the console pick one."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import httpx
import pytest
from t2v_client import (
    ApiClient,
    CliError,
    ExitCode,
    Target,
    check_place_options,
    sandbox_identities,
    sandbox_place,
    sandbox_target,
)
from t2v_console.app import IDENTITY_COOKIE, create_app
from t2v_console.backend import ConsoleBackend
from t2v_sandbox import cli, identities

API = "http://127.0.0.1:9/v1"


def endpoints_file(tmp_path: Path, **extra: Any) -> Path:
    """An endpoints file as the sandbox writes it (t2v_sandbox.sandbox.Sandbox._endpoints)."""
    path = tmp_path / "endpoints.json"
    endpoints = {
        "api_url": API,
        "region": "us-east-1",
        "moto_url": "http://127.0.0.1:9",
        "credentials": {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
        "default_identity": identities.DEFAULT_IDENTITY,
        "identities": {i.name: i.endpoint_entry() for i in identities.IDENTITIES},
        **extra,
    }
    path.write_text(json.dumps(endpoints))
    return path


def test_each_identity_is_its_own_iam_user_with_its_own_keys() -> None:
    users = {i.user_arn for i in identities.IDENTITIES}
    keys = {i.access_key for i in identities.IDENTITIES}
    assert len(users) == len(keys) == len(identities.IDENTITIES) >= 3
    assert all(re.fullmatch(r"arn:aws:iam::123456789012:user/[a-z]+", arn) for arn in users)
    # The default is the sandbox's one user of old: moto's keys, user `sandbox`, the prompt files' owner.
    assert (identities.DEFAULT.access_key, identities.DEFAULT.secret_key) == ("testing", "testing")
    assert identities.SANDBOX_USER_ARN == "arn:aws:iam::123456789012:user/sandbox"
    assert identities.principals()["testing"] == identities.SANDBOX_USER_ARN
    assert identities.signing_keys()["AKIASANDBOXALICE0001"] == "sandbox-alice-secret"
    assert identities.admin_principals() == "arn:aws:iam::123456789012:user/admin"
    with pytest.raises(KeyError, match="known: default, alice, bob, admin"):
        identities.identity("mallory")


def test_no_identity_chosen_signs_as_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T2V_IDENTITY", raising=False)
    target = sandbox_target(endpoints_file(tmp_path))
    assert target.credentials is not None
    assert (target.credentials.access_key, target.identity) == ("testing", "default")


def test_as_wins_over_the_environment_which_wins_over_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = endpoints_file(tmp_path)
    monkeypatch.setenv("T2V_IDENTITY", "bob")
    from_env = sandbox_target(path)
    explicit = sandbox_target(path, "alice")
    assert from_env.credentials is not None and explicit.credentials is not None
    assert (from_env.identity, from_env.credentials.access_key) == ("bob", "AKIASANDBOXBOB000001")
    assert (explicit.identity, explicit.credentials.secret_key) == ("alice", "sandbox-alice-secret")


def test_an_unknown_name_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(CliError) as info:
        sandbox_target(endpoints_file(tmp_path), "mallory")
    assert info.value.code == ExitCode.INVALID
    assert str(info.value) == "no sandbox identity 'mallory'; known: default, alice, bob, admin"


def test_an_endpoints_file_from_before_identities_has_its_one_pair_as_default(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps({"api_url": API, "credentials": {"aws_access_key_id": "k", "aws_secret_access_key": "s"}})
    )
    assert list(sandbox_identities(json.loads(path.read_text()))) == ["default"]
    target = sandbox_target(path)
    assert target.credentials is not None and target.credentials.access_key == "k"
    with pytest.raises(CliError, match=r"known: default$"):
        sandbox_target(path, "alice")


def test_as_is_for_the_sandbox_and_profile_for_a_stack() -> None:
    check_place_options(None, identity="alice", profile=None)
    check_place_options("t2v", identity=None, profile="team")
    with pytest.raises(CliError, match="use --profile NAME or AWS_PROFILE"):
        check_place_options("t2v", identity="alice", profile=None)
    with pytest.raises(CliError, match="in the sandbox pick a caller with --as NAME"):
        check_place_options(None, identity=None, profile="team")


def test_the_commands_take_as_identity_and_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = endpoints_file(tmp_path)
    parser = cli.build_parser()
    for argv in (["status", "j", "--as", "bob"], ["list", "--identity", "bob"], ["console", "--as", "bob"]):
        assert parser.parse_args(argv).identity == "bob"
    assert parser.parse_args(["submit", "p", "--stack", "t2v", "--profile", "team"]).profile == "team"
    # Given an unknown name, when a command runs, then one line names the known ones (exit 2).
    args = parser.parse_args(["status", "j", "--as", "mallory", "--endpoints", str(path)])
    err = io.StringIO()
    with redirect_stderr(err):
        code = args.func(args)
    assert code == ExitCode.INVALID
    assert err.getvalue() == "error: no sandbox identity 'mallory'; known: default, alice, bob, admin\n"


# --- the console's picker


class SignedBy:
    """A fake API that answers every call and records which access key signed it."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        match = re.search(r"Credential=([^/]+)/", request.headers.get("authorization", ""))
        assert match, "the console signs every call"
        self.keys.append(match.group(1))
        return httpx.Response(200, json={"items": []})


def console(place: Any, api: SignedBy) -> Any:
    backend = ConsoleBackend(place, client_factory=lambda t: ApiClient(t, transport=httpx.MockTransport(api)))
    app = create_app(backend)
    app.config["ALLOWED_HOSTS"] = frozenset({"localhost"})
    return app.test_client()


def csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_the_picker_switches_who_signs_per_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T2V_IDENTITY", raising=False)
    api = SignedBy()
    client = console(sandbox_place(endpoints_file(tmp_path), "alice"), api)
    page = client.get("/").get_data(as_text=True)
    assert '<option value="alice" selected>alice</option>' in page  # started with --as alice
    assert set(api.keys) == {"AKIASANDBOXALICE0001"}  # the page and its budget line (GET /usage)

    # Without the form token the switch is refused, and nothing changes.
    assert client.post("/identity", data={"identity": "bob"}).status_code == 403
    client.get("/")
    assert api.keys[-1] == "AKIASANDBOXALICE0001"

    answer = client.post("/identity", data={"identity": "bob", "csrf": csrf(page)})
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get("/").get_data(as_text=True)
    assert api.keys[-1] == "AKIASANDBOXBOB000001"
    assert '<option value="bob" selected>bob</option>' in page

    # Another browser (no cookie) still gets the identity the console started with.
    other = console(sandbox_place(endpoints_file(tmp_path), "alice"), api)
    other.get("/")
    assert api.keys[-1] == "AKIASANDBOXALICE0001"


def test_a_cookie_this_console_did_not_seal_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("T2V_IDENTITY", raising=False)
    api = SignedBy()
    client = console(sandbox_place(endpoints_file(tmp_path)), api)
    # A page on another port of 127.0.0.1 can set a cookie for this host, but cannot seal it.
    for forged in ("admin", "admin.0000", "admin." + "0" * 64):
        client.set_cookie(IDENTITY_COOKIE, forged, domain="localhost")
        client.get("/")
        assert api.keys[-1] == "testing"


def test_an_unknown_identity_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    api = SignedBy()
    client = console(sandbox_place(endpoints_file(tmp_path)), api)
    page = client.get("/").get_data(as_text=True)
    answer = client.post("/identity", data={"identity": "mallory", "csrf": csrf(page)})
    assert answer.status_code == 400
    assert "no sandbox identity &#39;mallory&#39;; known: default, alice, bob, admin" in answer.get_data(
        as_text=True
    )


def test_a_deployed_stack_has_no_picker(tmp_path: Path) -> None:
    api = SignedBy()
    place = sandbox_place(endpoints_file(tmp_path))
    stack = type(place)(
        target=Target(API, "us-east-1", place.target.credentials), session=None, endpoint_url=None
    )
    client = console(stack, api)
    page = client.get("/new").get_data(as_text=True)
    assert 'name="identity"' not in page
    answer = client.post("/identity", data={"identity": "alice", "csrf": csrf(page)})
    assert answer.status_code == 400
    assert "on AWS the console signs as its --profile" in answer.get_data(as_text=True)
