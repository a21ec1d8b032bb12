"""Runs real Lambda handlers in warm worker processes (a small pool per function), as Lambda keeps containers."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import random
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG = logging.getLogger("t2v_sandbox.lambda")
_HEADER = struct.Struct(">I")
_WORKER_SCRIPT = Path(__file__).with_name("_lambda_worker.py")
_INIT_TIMEOUT_SECONDS = 10.0
_PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "COVERAGE_PROCESS_START", "SSL_CERT_FILE")


class WorkerGoneError(Exception):
    """The worker process died or stopped answering."""


class WorkerTimeoutError(Exception):
    """The handler did not answer within the function's Timeout."""


class InjectedKillError(Exception):
    """The sandbox killed the worker mid-invocation on purpose (fault injection).

    Callers surface it as AWS does when an execution environment dies under an invocation: a Lambda
    service error (`Lambda.ServiceException` in Step Functions, a retried asynchronous invocation).
    """

    def __init__(self, function_name: str, request_id: str) -> None:
        self.function_name = function_name
        self.request_id = request_id
        super().__init__(f"{function_name}: worker killed mid-invocation (request {request_id})")


@dataclass
class RunnerSettings:
    python: str
    moto_url: str
    region: str
    work_dir: Path
    access_key: str
    secret_key: str
    max_workers_per_function: int = 4
    # Fault injection: kill the worker at a random network send inside the handler, so its side effects
    # may be half-done. `kill_functions` holds substrings of function names (empty: every function).
    kill_rate: float = 0.0
    kill_functions: tuple[str, ...] = ()
    kill_seed: int = 0
    # Another rate for the functions whose names hold a key (the first key that matches).
    kill_rates: dict[str, float] = field(default_factory=dict)
    kill_max_sends: int = 8
    # Environment added to every function (after the template's), e.g. timers scaled with the time scale.
    extra_env: dict[str, str] = field(default_factory=dict)
    # Cold vs warm start counts (and injected kills), for tests and reports.
    stats: dict[str, int] = field(default_factory=lambda: {"cold": 0, "warm": 0, "killed": 0})
    killed_by_function: dict[str, int] = field(default_factory=dict)


@dataclass
class FunctionSpec:
    """Everything a worker needs to start; equal specs share a pool, a changed spec retires it."""

    name: str
    arn: str
    handler: str
    runtime: str
    timeout: float
    memory: int
    version: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    environment: tuple[tuple[str, str], ...]

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()


def _read_exact(fd: int, size: int, deadline: float) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WorkerTimeoutError
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            raise WorkerTimeoutError
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            raise WorkerGoneError
        chunks.extend(chunk)
    return bytes(chunks)


class Worker:
    """One handler process; serves one invocation at a time."""

    def __init__(self, spec: FunctionSpec, settings: RunnerSettings) -> None:
        self.spec = spec
        read_fd, write_fd = os.pipe()
        log_dir = settings.work_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with (log_dir / f"{spec.name}.log").open("ab") as log:
            self.process = subprocess.Popen(
                [settings.python, str(_WORKER_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                env={**_worker_env(spec, settings), "T2V_WORKER_FD": str(write_fd)},
                pass_fds=(write_fd,),
                cwd=spec.code_dir,
                # Own session: Ctrl-C in a terminal reaches the sandbox, which then stops workers itself.
                start_new_session=True,
            )
        os.close(write_fd)
        self._reply_fd = read_fd
        self.fresh = True
        ready = self._receive(time.monotonic() + _INIT_TIMEOUT_SECONDS)
        if not ready.get("ready"):
            self.kill()
            raise WorkerGoneError

    def _receive(self, deadline: float) -> dict[str, Any]:
        (length,) = _HEADER.unpack(_read_exact(self._reply_fd, _HEADER.size, deadline))
        message: dict[str, Any] = json.loads(_read_exact(self._reply_fd, length, deadline))
        return message

    def invoke(
        self,
        event: Any,
        request_id: str,
        deadline_wall: float,
        deadline: float,
        kill: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        request = {
            "event": event,
            "request_id": request_id,
            "invoked_function_arn": self.spec.arn,
            "deadline_ms": int(deadline_wall * 1000),
            "kill": kill,
        }
        data = json.dumps(request).encode()
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(_HEADER.pack(len(data)) + data)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerGoneError from exc
        self.fresh = False
        return self._receive(deadline)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self.process.stdin:
            self.process.stdin.close()
        os.close(self._reply_fd)


def _worker_env(spec: FunctionSpec, settings: RunnerSettings) -> dict[str, str]:
    paths = [str(spec.code_dir)]
    for layer in spec.layer_dirs:
        # Lambda puts /opt/python on sys.path; a source layer dir (BuildMethod python3.13) is used as is.
        paths += [str(layer / "python"), str(layer)] if (layer / "python").is_dir() else [str(layer)]
    env = {k: os.environ[k] for k in _PASSTHROUGH_ENV if k in os.environ}
    env.update(
        {
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
            "TZ": ":UTC",
        }
    )
    env.update(dict(spec.environment))
    env.update(settings.extra_env)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(paths),
            "PYTHONUNBUFFERED": "1",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(spec.timeout)),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"sandbox/[{spec.version}]{uuid.uuid4().hex}",
            "AWS_REGION": settings.region,
            "AWS_DEFAULT_REGION": settings.region,
            "AWS_ACCESS_KEY_ID": settings.access_key,
            "AWS_SECRET_ACCESS_KEY": settings.secret_key,
            "AWS_SESSION_TOKEN": "sandbox-session-token",
            "AWS_ENDPOINT_URL": settings.moto_url,
            # No ~/.aws profile may leak real credentials or endpoints into a handler.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    return env


class FunctionPool:
    """Warm workers of one function version: reuse an idle one, start another up to the limit, else wait."""

    def __init__(self, spec: FunctionSpec, settings: RunnerSettings) -> None:
        self.spec = spec
        self.fingerprint = spec.fingerprint()
        self._settings = settings
        self._idle: list[Worker] = []
        self._count = 0
        self._closed = False
        self._cond = threading.Condition()

    def acquire(self) -> Worker:
        with self._cond:
            while True:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    self._count -= 1
                    worker.kill()
                if self._count < self._settings.max_workers_per_function:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return Worker(self.spec, self._settings)
        except BaseException:
            self.discard(None)
            raise

    def release(self, worker: Worker) -> None:
        with self._cond:
            if self._closed:
                worker.kill()
            else:
                self._idle.append(worker)
            self._cond.notify()

    def discard(self, worker: Worker | None) -> None:
        if worker is not None:
            worker.kill()
        with self._cond:
            self._count -= 1
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


class LambdaRunner:
    """Maps moto LambdaFunction objects to pools of real handler processes."""

    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings
        self.code_sources: dict[str, Path] = {}
        self._pools: dict[tuple[str, str], FunctionPool] = {}
        self._dirs: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._kill_rng = random.Random(settings.kill_seed)  # noqa: S311 - fault injection, not crypto

    def _kill_plan(self, spec: FunctionSpec) -> dict[str, Any] | None:
        """Whether to kill this invocation, and where: at the k-th network send, before or after it."""
        settings = self.settings
        rate = next((r for part, r in settings.kill_rates.items() if part in spec.name), settings.kill_rate)
        if rate <= 0:
            return None
        if settings.kill_functions and not any(part in spec.name for part in settings.kill_functions):
            return None
        with self._lock:
            if self._kill_rng.random() >= rate:
                return None
            return {
                "after_sends": self._kill_rng.randint(1, settings.kill_max_sends),
                "before": self._kill_rng.random() < 0.5,
            }

    def register_source(self, zip_sha256_hex: str, directory: Path) -> None:
        """Run code from its live source dir instead of an extracted copy (tracebacks, coverage)."""
        self.code_sources[zip_sha256_hex] = directory

    def _code_dir(self, code_bytes: bytes) -> Path:
        digest = hashlib.sha256(code_bytes).hexdigest()
        if digest in self.code_sources:
            return self.code_sources[digest]
        with self._lock:
            if digest not in self._dirs:
                target = self.settings.work_dir / "code" / digest[:16]
                if not target.is_dir():
                    with zipfile.ZipFile(io.BytesIO(code_bytes)) as zf:
                        zf.extractall(target)
                self._dirs[digest] = target
            return self._dirs[digest]

    def spec_for(self, fn: Any) -> FunctionSpec:
        from moto.awslambda.models import lambda_backends

        backend = lambda_backends[fn.account_id][fn.region]
        layer_dirs = []
        for layer in fn.layers:
            version = backend.layers_versions_by_arn(layer["Arn"])
            if version is None:
                raise LookupError(f"{fn.function_name}: layer {layer['Arn']} is not in moto")
            layer_dirs.append(self._code_dir(version.code_bytes))
        return FunctionSpec(
            name=fn.function_name,
            arn=fn.function_arn,
            handler=fn.handler,
            runtime=fn.run_time or "python3.13",
            timeout=float(fn.timeout),
            memory=int(fn.memory_size),
            version=str(fn.version),
            code_dir=self._code_dir(fn.code_bytes),
            layer_dirs=tuple(layer_dirs),
            environment=tuple(sorted((k, str(v)) for k, v in (fn.environment_vars or {}).items())),
        )

    def _pool(self, spec: FunctionSpec) -> FunctionPool:
        key = (spec.name, spec.version)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None or pool.fingerprint != spec.fingerprint():
                if pool is not None:
                    pool.close()
                pool = self._pools[key] = FunctionPool(spec, self.settings)
            return pool

    def invoke(self, fn: Any, event: Any) -> tuple[str, bool]:
        """Run one invocation; returns (payload JSON, errored) like moto's Docker path."""
        spec = self.spec_for(fn)
        if not spec.runtime.startswith("python"):
            return _envelope(
                "Runtime.InvalidRuntime", f"sandbox runs python runtimes only, not {spec.runtime}"
            )
        pool = self._pool(spec)
        request_id = str(uuid.uuid4())
        worker = pool.acquire()
        self.settings.stats["cold" if worker.fresh else "warm"] += 1
        start_wall, start = time.time(), time.monotonic()
        kill = self._kill_plan(spec)
        try:
            reply = worker.invoke(event, request_id, start_wall + spec.timeout, start + spec.timeout, kill)
        except WorkerTimeoutError:
            pool.discard(worker)
            LOG.warning("%s: timed out after %.2f s (request %s)", spec.name, spec.timeout, request_id)
            return _envelope(
                "Sandbox.Timedout",
                f"RequestId: {request_id} Error: Task timed out after {spec.timeout:.2f} seconds",
            )
        except WorkerGoneError:
            pool.discard(worker)  # reaps the process; the next invocation starts a fresh worker
            code = worker.process.returncode
            if kill is not None and code == -signal.SIGKILL:
                with self._lock:
                    self.settings.stats["killed"] += 1
                    by_fn = self.settings.killed_by_function
                    by_fn[spec.name] = by_fn.get(spec.name, 0) + 1
                LOG.info(
                    "%s: worker killed mid-invocation (fault injection, request %s)", spec.name, request_id
                )
                raise InjectedKillError(spec.name, request_id) from None
            return _envelope(
                "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited with status {code}"
            )
        pool.release(worker)
        if reply.get("ok"):
            return reply["result"], False
        return json.dumps(reply["error"]), True

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def _envelope(error_type: str, message: str) -> tuple[str, bool]:
    return json.dumps({"errorType": error_type, "errorMessage": message}), True


def default_python() -> str:
    """The interpreter of this venv (python3.13, with the pinned runtime deps of the layer)."""
    return sys.executable
