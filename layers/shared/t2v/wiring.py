"""Builds the pipeline's dependencies from the environment, once per Lambda container."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

from t2v.adapters.jobs_repo import JobsRepository
from t2v.adapters.poll_stats import PollStats
from t2v.adapters.secrets import ApiKeyProvider
from t2v.adapters.workflow import TaskTokens, Workflow
from t2v.config import (
    AnnounceSettings,
    ApiSettings,
    DashScopeSettings,
    FinalizeSettings,
    IntakeSettings,
    ProviderSettings,
    PushSettings,
    SweeperSettings,
)

# Each handler imports this module but builds only its own dependencies: what only some handlers
# use (the intake door, push, finalize's downloader, the announcer, S3) is imported inside the
# builder that needs it, so a handler's cold start does not pay for the others' modules
# (docs/benchmarks.md, section 4).
if TYPE_CHECKING:
    from t2v.adapters.storage import VideoStore
    from t2v.api.edge import ReadSide
    from t2v.contract import ExecutionInput
    from t2v.dashscope import DashScopeClient
    from t2v.intake import IntakeDeps
    from t2v.push import PushDeps
    from t2v.sweeper import SweepDeps
    from t2v.usecases.announce import AnnounceDeps
    from t2v.usecases.finalize import FinalizeDeps
    from t2v.usecases.ports import ProviderDeps
    from t2v.usecases.videos import ApiDeps


class ProviderClients:
    """A DashScope client per container, rebuilt only when the secret's key changes.

    Calling it gives the client for the cached key; `refresh()` reads the secret again at once, for
    when the provider refused the cached key (rotated within the cache's 300 s).
    """

    def __init__(self, secret_id: str, *, base_url: str, workspace: str | None) -> None:
        self._keys = ApiKeyProvider(secret_id)
        self._base_url = base_url
        self._workspace = workspace
        self._clients: dict[str, DashScopeClient] = {}

    def __call__(self, *, fresh: bool = False) -> DashScopeClient:
        # Imported here, not at module level: httpx and the client's models cost ~40 ms of a cold
        # import, and only submit, status and the API talk to DashScope.
        from t2v.dashscope import DashScopeClient

        key = self._keys.get(fresh=fresh)  # cached; a rotated secret yields a new client
        if key not in self._clients:
            self._clients.clear()
            self._clients[key] = DashScopeClient(key, base_url=self._base_url, workspace=self._workspace)
        return self._clients[key]

    def refresh(self) -> None:
        self(fresh=True)


def provider_client_factory(settings: DashScopeSettings) -> ProviderClients:
    return ProviderClients(
        settings.dashscope_secret_id,
        base_url=settings.dashscope_base_url,
        workspace=settings.dashscope_workspace,
    )


def build_announce_deps(settings: AnnounceSettings, *, repo: JobsRepository | None = None) -> AnnounceDeps:
    """What ending a job and announcing it needs: the jobs and the notifier."""
    from t2v.adapters.notifier import Notifier
    from t2v.usecases.announce import AnnounceDeps

    return AnnounceDeps(
        repo=repo or JobsRepository(settings.jobs_table),
        notifier=Notifier(
            topic_arn=settings.topic_arn,
            event_bus_name=settings.event_bus_name,
            event_source=settings.event_source,
        ),
    )


def build_finalize_deps(
    settings: FinalizeSettings, *, repo: JobsRepository | None = None, store: VideoStore | None = None
) -> FinalizeDeps:
    from t2v.adapters.download import VideoDownloader  # httpx: only finalize downloads
    from t2v.adapters.storage import VideoStore
    from t2v.media import HostAllowlist
    from t2v.usecases.finalize import FinalizeDeps

    return FinalizeDeps(
        announce=build_announce_deps(settings, repo=repo),
        store=store or VideoStore(),
        downloader=VideoDownloader(HostAllowlist(settings.allowlist), max_bytes=settings.max_video_bytes),
        settings=settings,
        stats=PollStats(settings.jobs_table),
    )


@cache
def provider_deps() -> ProviderDeps:
    from t2v.usecases.ports import ProviderDeps

    settings = ProviderSettings.from_env()
    client = provider_client_factory(settings)
    return ProviderDeps(
        repo=JobsRepository(settings.jobs_table),
        client=client,
        refresh_key=client.refresh,
        settings=settings,
        stats=PollStats(settings.jobs_table, default_scale=settings.generation_time_scale),
    )


@cache
def push_deps() -> PushDeps:
    """The callback's and the park step's adapters; the token is read only when a push arrives."""
    from t2v.push import PushDeps

    settings = PushSettings.from_env()
    secret_id = settings.callback_secret_id
    tokens = ApiKeyProvider(secret_id, fields=("token",), what="push token") if secret_id else None
    return PushDeps(
        repo=JobsRepository(settings.jobs_table),
        waker=TaskTokens(),
        token=tokens.get if tokens is not None else (lambda: ""),  # no secret: every push is refused
    )


@cache
def finalize_deps() -> FinalizeDeps:
    return build_finalize_deps(FinalizeSettings.from_env())


@cache
def intake_deps() -> IntakeDeps:
    from t2v.adapters.invoker import AsyncInvoker
    from t2v.adapters.storage import VideoStore
    from t2v.intake import MAX_PROMPT_FILE_BYTES, IntakeDeps
    from t2v.times import utcnow
    from t2v.usecases.announce import end_job

    settings = IntakeSettings.from_env()
    store = VideoStore()

    def read_object(bucket: str, key: str, version: str | None) -> bytes:
        return store.read_capped(bucket=bucket, key=key, version=version, cap=MAX_PROMPT_FILE_BYTES)

    repo = JobsRepository(settings.jobs_table)
    announce = build_announce_deps(settings, repo=repo)

    def record(execution: ExecutionInput) -> bool:
        now = utcnow()
        _, new = repo.create_if_absent(
            execution.job_id,
            request=execution.request,
            source=execution.source,
            origin=execution.origin,
            now=now,
            deadline_at=settings.deadline_from(now) + timedelta(seconds=execution.start_delay_seconds),
            owner=settings.job_owner,
        )
        return new

    function = settings.aws_lambda_function_name
    return IntakeDeps(
        starter=Workflow(settings.state_machine_arn),
        record=record,
        reject=lambda job_id, outcome, first: end_job(job_id, outcome, announce, first=first),
        read_object=read_object,
        defaults={"size": settings.default_size, "duration": settings.default_duration},
        input_prefix=settings.input_prefix,
        hand_on=AsyncInvoker(function) if function else None,
        lines_per_invocation=settings.intake_lines_per_invocation,
        handoff_margin_seconds=settings.intake_handoff_seconds,
    )


def build_api_deps() -> ApiDeps:
    """Everything the API's use cases need, from the environment; clients are built lazily."""
    from t2v.usecases.videos import ApiDeps  # the API's use cases: only the API loads them

    settings = ApiSettings.from_env()
    repo = JobsRepository(settings.jobs_table)
    return ApiDeps(
        repo=repo,
        executions=Workflow(settings.state_machine_arn),
        provider=provider_client_factory(settings),
        outcomes=build_announce_deps(settings, repo=repo),
        settings=settings,
    )


def build_api_reads() -> ReadSide:
    """What the API's views need besides the records: the store (video URLs), the tier timings."""
    from t2v.adapters.storage import VideoStore
    from t2v.api.edge import ReadSide  # the API's views: only the API loads them

    settings = ApiSettings.from_env()
    return ReadSide(
        store=VideoStore(),
        timings=PollStats(settings.jobs_table, default_scale=settings.generation_time_scale),
    )


@cache
def sweep_deps() -> SweepDeps:
    from t2v.sweeper import SweepDeps

    settings = SweeperSettings.from_env()
    repo = JobsRepository(settings.jobs_table)
    return SweepDeps(
        repo=repo,
        executions=Workflow(settings.state_machine_arn),
        provider=provider_client_factory(settings),
        outcomes=build_announce_deps(settings, repo=repo),
        settings=settings,
    )
