"""The sandbox: moto in server mode + the DashScope emulator + a real SAM template deployed on one machine."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import boto3
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import ClientError

from t2v_sandbox import identities, patches
from t2v_sandbox.apigateway import ApiFront, FrontSettings
from t2v_sandbox.deployer import Deployer, DeployError, Stack, resolve_parameters
from t2v_sandbox.eventbridge import EventDelivery
from t2v_sandbox.lambda_runner import LambdaRunner, RunnerSettings, default_python
from t2v_sandbox.provisioners import DeployContext, service_client
from t2v_sandbox.schedules import Scheduler
from t2v_sandbox.template import Packager, load_template, prepare_sam, translate

LOG = logging.getLogger("t2v_sandbox")
ACCOUNT_ID = identities.SANDBOX_ACCOUNT
# The default identity's keys: moto's fake credentials, never real ones. The sandbox's own clients
# and the functions sign with them; the API front also accepts the other identities' keys.
ACCESS_KEY = identities.DEFAULT.access_key
SECRET_KEY = identities.DEFAULT.secret_key
EMULATOR_API_KEY = "sk-sandbox-local"
ARTIFACTS_BUCKET = "t2v-sandbox-artifacts"
_active_lock = threading.Lock()
_EXECUTE_API = re.compile(r"^https://(?P<api>[A-Za-z0-9]+)\.execute-api\.[^/]+(?P<rest>/.*)?$")


@dataclass
class SandboxConfig:
    template: Path = Path("template.yaml")
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    time_scale: float = 1.0
    emulator: bool = True
    emulator_pending_seconds: float = 2.0
    emulator_running_seconds: float = 5.0
    # The emulated account's cap on tasks in flight (None: none) and what it does past it.
    emulator_max_running_tasks: int | None = None
    emulator_over_cap: str = "refuse"
    work_dir: Path = Path(".sandbox")
    stack_name: str = "t2v-sandbox"
    region: str = "us-east-1"
    host: str = "127.0.0.1"
    moto_port: int = 0
    api_port: int = 0
    python: str = field(default_factory=default_python)
    max_workers_per_function: int = 4
    async_retries: int = 2
    write_endpoints: bool = True
    # The key stored in the stack's secret when the emulator plays DashScope (tests pick a distinctive one).
    emulator_api_key: str = EMULATOR_API_KEY
    # More video origins finalize may fetch from, besides the emulator's (tests' hostile hosts).
    extra_video_origins: tuple[str, ...] = ()
    # Fault injection, off by default (see docs of RunnerSettings and patches.Runtime):
    duplicate_deliveries: bool = False  # deliver every S3 notification and EventBridge invocation twice
    kill_rate: float = 0.0  # share of Lambda invocations whose worker is SIGKILLed mid-handler
    kill_functions: tuple[str, ...] = ()  # substrings of function names to kill (empty: all)
    kill_seed: int = 0
    # Another kill rate for the functions whose names hold a key (e.g. {"BatchFunction": 0.25}).
    kill_rates: dict[str, float] = field(default_factory=dict)
    # Extra environment for every function (wins over the template's variables).
    function_environment: dict[str, str] = field(default_factory=dict)
    # Push completion: the template's PushCompletion parameter (when it declares one and no override
    # sets it), and the emulator pushing each task's end to the deployed callback route.
    # T2V_PUSH=off runs every sandbox (tests, soak, demo) with push off.
    push: bool = field(default_factory=lambda: os.environ.get("T2V_PUSH", "on").lower() != "off")


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class Sandbox:
    """Context manager; `start()` deploys the template, `stop()` tears everything down.

    moto keeps its state per process, so one sandbox runs per process at a time; `stop()` resets moto.
    """

    _active: ClassVar[Sandbox | None] = None

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.work_dir = config.work_dir.resolve()
        self.session = boto3.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=config.region
        )
        self.moto_url = ""
        self.stack: Stack | None = None
        self.endpoints: dict[str, Any] = {}
        self.runner: LambdaRunner | None = None
        self._server: Any = None
        self._emulator: Any = None
        self._fronts: list[ApiFront] = []
        self._front_lambda: Any = None  # the API fronts' Lambda client (no retries)
        self._runtime: patches.Runtime | None = None
        self._scheduler: Scheduler | None = None
        self._saved_env: dict[str, str | None] = {}

    # --- public API
    @property
    def credentials(self) -> ReadOnlyCredentials:
        """moto's fake credentials, the ones `session` signs with."""
        return ReadOnlyCredentials(ACCESS_KEY, SECRET_KEY, None)

    def credentials_as(self, name: str) -> ReadOnlyCredentials:
        """The key pair of the sandbox identity `name` (t2v_sandbox.identities); KeyError names the known."""
        found = identities.identity(name)
        return ReadOnlyCredentials(found.access_key, found.secret_key, None)

    def client(self, service: str, **kwargs: Any) -> Any:
        return service_client(self.session, service, endpoint_url=self.moto_url, **kwargs)

    def physical_id(self, logical_id: str) -> Any:
        if self.stack is None or logical_id not in self.stack.resources:
            raise KeyError(f"no resource {logical_id!r} in the sandbox stack")
        return self.stack.resources[logical_id]["PhysicalResourceId"]

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(self.stack.outputs) if self.stack else {}

    def fault_stats(self) -> dict[str, Any]:
        """What the sandbox itself injected: duplicate deliveries and killed workers (by logical id)."""
        runtime, runner = self._runtime, self.runner
        resources = self.stack.resources if self.stack else {}
        logical = {str(r.get("PhysicalResourceId")): lid for lid, r in resources.items()}
        killed = runner.settings.killed_by_function if runner else {}
        return {
            "deliveries": runtime.stats["deliveries"] if runtime else 0,
            "duplicate_deliveries": runtime.stats["duplicate_deliveries"] if runtime else 0,
            "kills": runner.settings.stats["killed"] if runner else 0,
            "kills_by_function": {logical.get(name, name): count for name, count in killed.items()},
            "scheduled_runs": self._scheduler.fired if self._scheduler else 0,
        }

    def fire_schedules(self) -> int:
        """Fire every scheduled rule now (as its timer would); returns how many rules fired."""
        rules = self._scheduler.rules if self._scheduler else []
        for rule in rules:
            assert self._scheduler is not None
            self._scheduler.fire(rule)
        return len(rules)

    @property
    def api_urls(self) -> dict[str, str]:
        return {front.spec.logical_id: front.url for front in self._fronts}

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Self:
        patches.check_moto_version()  # before moto's server starts, not only before its patches
        with _active_lock:
            if Sandbox._active is not None:
                raise RuntimeError("a sandbox is already running in this process (moto state is per process)")
            Sandbox._active = self
        try:
            self._start_moto()
            self._start_runtime()
            self._start_emulator()
            self.stack = self._deploy()
            self._store_api_key()
            self._scheduler = Scheduler(
                self.client, time_scale=self.config.time_scale, account=ACCOUNT_ID, region=self.config.region
            ).start()
            self._start_fronts()
            self._wire_push()
            self.endpoints = self._endpoints()
            if self.config.write_endpoints:
                self.work_dir.mkdir(parents=True, exist_ok=True)
                (self.work_dir / "endpoints.json").write_text(json.dumps(self.endpoints, indent=2) + "\n")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        for front in self._fronts:
            front.stop()
        self._fronts = []
        if self._runtime is not None:
            patches.activate(None)
            self._runtime.executor.shutdown(wait=False, cancel_futures=True)
            self._runtime = None
        if self.runner is not None:
            self.runner.close()
            self.runner = None
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None
        self._stop_moto()
        with _active_lock:
            if Sandbox._active is self:
                Sandbox._active = None

    # --- moto
    def _moto_api(self, path: str, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        request = urllib.request.Request(f"{self.moto_url}{path}", data=data, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback moto only
            response.read()

    def _set_env(self, name: str, value: str) -> None:
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        port = self.config.moto_port or _free_port(self.config.host)
        self._server = ThreadedMotoServer(ip_address=self.config.host, port=port, verbose=False)
        self._server.start()
        self.moto_url = f"http://{self.config.host}:{port}"
        # moto's Step Functions interpreter calls Lambda (and aws-sdk tasks) at localhost:$MOTO_PORT.
        self._set_env("MOTO_PORT", str(port))
        self._moto_api("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})

    def _stop_moto(self) -> None:
        if self._server is not None:
            try:
                self._moto_api("/moto-api/reset")
            finally:
                self._server.stop()
                self._server = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    def _start_runtime(self) -> None:
        patches.install()
        self.runner = LambdaRunner(
            RunnerSettings(
                python=self.config.python,
                moto_url=self.moto_url,
                region=self.config.region,
                work_dir=self.work_dir,
                access_key=ACCESS_KEY,
                secret_key=SECRET_KEY,
                max_workers_per_function=self.config.max_workers_per_function,
                kill_rate=self.config.kill_rate,
                kill_functions=tuple(self.config.kill_functions),
                kill_seed=self.config.kill_seed,
                kill_rates=dict(self.config.kill_rates),
                extra_env=self._function_environment(),
            )
        )
        runtime = patches.Runtime(
            runner=self.runner,
            time_scale=self.config.time_scale,
            async_retries=self.config.async_retries,
            delivery_copies=2 if self.config.duplicate_deliveries else 1,
        )
        runtime.deliver_event = EventDelivery(
            self.client, runtime.submit, copies=runtime.delivery_copies, on_delivery=runtime.count_delivery
        )
        self._runtime = runtime
        patches.activate(runtime)

    def _function_environment(self) -> dict[str, str]:
        # Wall-clock timers inside the handlers shrink with the Step Functions time scale, or a retry
        # schedule squeezed into seconds would always run out before a create claim can go stale.
        scaled = max(1, round(60 * self.config.time_scale))
        env = {
            "CREATE_CLAIM_STALE_SECONDS": str(scaled),
            # The sweeper's grace shrinks with the schedule that fires it.
            "SWEEP_GRACE_SECONDS": str(max(1, round(300 * self.config.time_scale))),
            # moto's indexes never lag; the guard still runs, at the scale of the retries that wait it out.
            "INDEX_LAG_SECONDS": str(round(2.0 * self.config.time_scale, 3)),
        }
        if self.config.emulator:
            env["PROVIDER_CLOCK_SKEW_SECONDS"] = "0.05"  # the emulator shares this machine's clock
        return {**env, **self.config.function_environment}

    # --- DashScope
    def _start_emulator(self) -> None:
        if not self.config.emulator or os.environ.get("DASHSCOPE_API_KEY"):
            return
        try:
            from dashscope_emulator.server import Emulator, EmulatorConfig
        except ImportError as exc:
            raise RuntimeError(
                "the DashScope emulator (tools/dashscope_emulator/server.py) is not available: "
                "pass emulator=False or set DASHSCOPE_API_KEY to use the real DashScope"
            ) from exc
        emulator = Emulator(
            EmulatorConfig(
                pending_seconds=self.config.emulator_pending_seconds,
                running_seconds=self.config.emulator_running_seconds,
            )
        )
        emulator.set_capacity(self.config.emulator_max_running_tasks, self.config.emulator_over_cap)
        emulator.start(host=self.config.host, port=0)
        self._emulator = emulator

    def _parameter_overrides(self, declared: dict[str, Any]) -> dict[str, str]:
        overrides = dict(self.config.parameter_overrides)
        if "PushCompletion" in declared:
            overrides.setdefault("PushCompletion", "Enabled" if self.config.push else "Disabled")
        if "PromptJobOwner" in declared:
            # The prompt files uploaded to the sandbox are its default identity's jobs (API, console).
            overrides.setdefault("PromptJobOwner", identities.SANDBOX_USER_ARN)
        if "AdminPrincipals" in declared:
            overrides.setdefault("AdminPrincipals", identities.admin_principals())
        if self._emulator is not None:
            # Point the pipeline at the emulator, and let finalize download the emulator's (http) videos.
            if "DashScopeBaseUrl" in declared:
                overrides.setdefault("DashScopeBaseUrl", self._emulator.base_url)
            if "VideoHostAllowlist" in declared:
                default = str(declared["VideoHostAllowlist"].get("Default") or "")
                overrides.setdefault(
                    "VideoHostAllowlist",
                    ",".join(
                        filter(None, [default, self._emulator.root_url, *self.config.extra_video_origins])
                    ),
                )
        return overrides

    @property
    def push_enabled(self) -> bool:
        return bool(self.stack and self.stack.parameters.get("PushCompletion") == "Enabled")

    def callback_url(self) -> str | None:
        """Where the emulator pushes: the deployed callback route on the sandbox's API front."""
        if self.stack is None or "CallbackFunction" not in self.stack.resources:
            return None
        api_url = next(iter(self.api_urls.values()), None)
        return f"{api_url}/callbacks/dashscope" if api_url else None

    def _wire_push(self) -> None:
        """Alibaba Cloud's side of push, played by the emulator: an HTTP target with the callback URL
        and the token the stack generated."""
        url = self.callback_url()
        if self._emulator is None or not self.push_enabled or url is None:
            return
        secret_arn = self.physical_id("CallbackSecret")
        token = self.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
        self._emulator.configure_push(url, token)

    def _store_api_key(self) -> None:
        assert self.stack is not None
        secret_name = self.stack.parameters.get("DashScopeSecretName")
        if not secret_name:
            return
        key = os.environ.get("DASHSCOPE_API_KEY") if self._emulator is None else self.config.emulator_api_key
        if not key:
            LOG.warning("no DashScope API key: DASHSCOPE_API_KEY unset and the emulator is off")
            return
        client = self.client("secretsmanager")
        try:
            client.put_secret_value(SecretId=secret_name, SecretString=key)
        except client.exceptions.ResourceNotFoundException:
            client.create_secret(Name=secret_name, SecretString=key)

    # --- template
    def _deploy(self) -> Stack:
        template_path = self.config.template.resolve()
        template = load_template(template_path)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
        packager = Packager(
            template_path.parent,
            ARTIFACTS_BUCKET,
            lambda key, data: s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=data),
        )
        sam = prepare_sam(template, template_path.parent, packager)
        assert self.runner is not None
        for artifact in packager.artifacts:
            self.runner.register_source(artifact.sha256, artifact.source_dir)
        parameters = resolve_parameters(sam, self._parameter_overrides(sam.get("Parameters", {})))
        cfn = translate(sam, parameters, self.config.region)
        ctx = DeployContext(
            self.session, self.moto_url, self.config.stack_name, self.config.region, ACCOUNT_ID
        )
        stack = Deployer(ctx, cfn, parameters).deploy()
        for note in stack.notes:
            LOG.info("accepted, not enforced locally: %s", note)
        return stack

    def _invoke_for_api(self, function_arn: str, event: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
        # API Gateway invokes its Lambda integration once: a crashed invocation is a 502 to the
        # caller, never retried behind its back (botocore would retry the Invoke API's 500).
        try:
            response = self._front_lambda.invoke(FunctionName=function_arn, Payload=json.dumps(event))
        except ClientError as exc:  # the Invoke API's 500 (ServiceException): the worker died
            LOG.info("API integration failed: %s", exc.response.get("Error", {}).get("Code"))
            return None, True
        payload = json.loads(response["Payload"].read() or b"null")
        return payload, "FunctionError" in response

    def _start_fronts(self) -> None:
        assert self.stack is not None
        stack = self.stack
        self._front_lambda = self.client("lambda", config=Config(retries={"total_max_attempts": 1}))
        settings = FrontSettings(
            region=self.config.region,
            credentials=identities.signing_keys(),
            principals=identities.principals(),
            api_keys=lambda: list(stack.api_keys),
            invoke=self._invoke_for_api,
        )
        for index, spec in enumerate(stack.apis.values()):
            port = self.config.api_port + index if self.config.api_port else 0
            try:
                front = ApiFront(spec, settings, host=self.config.host, port=port)
            except Exception as exc:
                raise DeployError(f"{spec.logical_id} (AWS::ApiGateway::RestApi): {exc}") from exc
            front.start()
            self._fronts.append(front)

    def local_outputs(self) -> dict[str, Any]:
        """The stack's outputs with every `https://<api id>.execute-api.<region>.<suffix>` URL made local."""
        assert self.stack is not None
        bases = {
            front.spec.api_id: front.url.rsplit("/", 1)[0] for front in self._fronts
        }  # http://127.0.0.1:PORT (the stage follows in the output itself)
        local: dict[str, Any] = {}
        for key, value in self.stack.outputs.items():
            match = _EXECUTE_API.match(value) if isinstance(value, str) else None
            if match and match.group("api") in bases:
                local[key] = bases[match.group("api")] + (match.group("rest") or "")
            else:
                local[key] = value
        return local

    def _endpoints(self) -> dict[str, Any]:
        assert self.stack is not None
        api_urls = self.api_urls
        return {
            "region": self.config.region,
            "moto_url": self.moto_url,
            "api_url": next(iter(api_urls.values()), None),
            "api_urls": api_urls,
            "emulator_url": self._emulator.base_url if self._emulator else None,
            "emulator_root_url": self._emulator.root_url if self._emulator else None,
            "push": self.push_enabled,
            "callback_url": self.callback_url(),
            "dashscope": "emulator"
            if self._emulator
            else ("real" if os.environ.get("DASHSCOPE_API_KEY") else None),
            "stack_name": self.stack.name,
            # The default identity's keys; `identities` lists every caller `t2v --as NAME` can be.
            "credentials": {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY},
            "default_identity": identities.DEFAULT_IDENTITY,
            "identities": {i.name: i.endpoint_entry() for i in identities.IDENTITIES},
            "log_dir": str(self.work_dir / "logs"),
            "parameters": self.stack.parameters,
            # Outputs as a user can follow them: an execute-api URL becomes the local front's URL.
            "outputs": self.local_outputs(),
            "outputs_as_declared": self.stack.outputs,
            "resources": {
                lid: {"type": res["Type"], "physical_id": res["PhysicalResourceId"]}
                for lid, res in self.stack.resources.items()
            },
            "not_enforced": self.stack.notes,
        }
