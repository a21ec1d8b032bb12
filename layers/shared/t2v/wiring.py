"""Builds the pipeline's dependencies from the environment, once per Lambda container."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

from t2v.adapters import LazyTable
from t2v.adapters.announcements import AnnouncementClaims
from t2v.adapters.budget import BudgetLedger
from t2v.adapters.idempotency import IdempotencyKeys
from t2v.adapters.jobs_repo import JobsRepository
from t2v.adapters.poll_stats import PollStats
from t2v.adapters.push_records import PushRecords
from t2v.adapters.secrets import ApiKeyProvider
from t2v.adapters.task_owners import TaskOwners
from t2v.adapters.workflow import TaskTokens, Workflow
from t2v.config import (
    AnnounceSettings,
    ApiSettings,
    BatchSettings,
    DashScopeSettings,
    FinalizeSettings,
    IntakeSettings,
    JobsSettings,
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
    from t2v.jobs import JobRecord
    from t2v.push import PushDeps
    from t2v.signals import Signals
    from t2v.sweeper import SweepDeps
    from t2v.usecases.announce import AnnounceDeps
    from t2v.usecases.batches import BatchDeps
    from t2v.usecases.capacity import Governor
    from t2v.usecases.finalize import FinalizeDeps
    from t2v.usecases.ports import ProviderClient, ProviderDeps
    from t2v.usecases.videos import ApiDeps


@dataclass(frozen=True)
class Repositories:
    """The repositories of the jobs table, one per record kind (t2v.adapters.jobs_table), sharing one
    boto3 Table; each handler's builder makes them once per container."""

    table: LazyTable
    jobs: JobsRepository
    tasks: TaskOwners
    announcements: AnnouncementClaims
    push: PushRecords
    budget: BudgetLedger
    keys: IdempotencyKeys

    @classmethod
    def over(cls, table_name: str) -> Repositories:
        table = LazyTable(table_name)
        return cls(
            table=table,
            jobs=JobsRepository(table),
            tasks=TaskOwners(table),
            announcements=AnnouncementClaims(table),
            push=PushRecords(table),
            budget=BudgetLedger(table),
            keys=IdempotencyKeys(table),
        )


class ProviderClients:
    """A DashScope client per container, rebuilt only when the secret's key changes.

    Calling it gives the client for the cached key; `refresh()` reads the secret again at once, for
    when the provider refused the cached key (rotated within the cache's 300 s).
    """

    def __init__(
        self, secret_id: str, *, base_url: str, workspace: str | None, timeout_seconds: float | None = None
    ) -> None:
        self._keys = ApiKeyProvider(secret_id)
        self._base_url = base_url
        self._workspace = workspace
        self._timeout_seconds = timeout_seconds  # None: the client's own (reads may take 20 s)
        self._clients: dict[str, DashScopeClient] = {}

    def __call__(self, *, fresh: bool = False) -> DashScopeClient:
        # Imported here, not at module level: httpx and the client's models cost ~40 ms of a cold
        # import, and only submit, status and the API talk to DashScope.
        from t2v.dashscope import DashScopeClient

        key = self._keys.get(fresh=fresh)  # cached; a rotated secret yields a new client
        if key not in self._clients:
            self._clients.clear()
            timeout = None
            if self._timeout_seconds is not None:
                import httpx

                timeout = httpx.Timeout(self._timeout_seconds)
            self._clients[key] = DashScopeClient(
                key, base_url=self._base_url, workspace=self._workspace, timeout=timeout
            )
        return self._clients[key]

    def refresh(self) -> None:
        self(fresh=True)


def provider_client_factory(
    settings: DashScopeSettings, *, timeout_seconds: float | None = None
) -> ProviderClients:
    return ProviderClients(
        settings.dashscope_secret_id,
        base_url=settings.dashscope_base_url,
        workspace=settings.dashscope_workspace,
        timeout_seconds=timeout_seconds,
    )


@cache
def signals() -> Signals:
    """The operator's metrics (t2v.signals), as EMF lines in the function's log."""
    from t2v.adapters.metrics import EmfSignals

    return EmfSignals()


def metered(clients: Callable[[], ProviderClient]) -> Callable[[], ProviderClient]:
    """The provider client, counting the key's refusals and the creates refused for capacity."""
    from t2v.signals import MeteredProvider

    return lambda: MeteredProvider(clients(), signals())


def build_governor(settings: JobsSettings, table: LazyTable) -> Governor:
    """The capacity governor: leases in the jobs table; wakes go to parked capacity waits."""
    from t2v.adapters.capacity_leases import CapacityLeases
    from t2v.usecases.capacity import Governor

    return Governor(
        leases=CapacityLeases(table, ceiling=settings.provider_max_tasks_in_flight),
        waker=TaskTokens(),
        deadline_seconds=settings.deadline_seconds,
    )


def build_announce_deps(settings: AnnounceSettings, *, repos: Repositories | None = None) -> AnnounceDeps:
    """What ending a job and announcing it needs: the jobs, their announcement claims and the notifier."""
    from t2v.adapters.notifier import Notifier
    from t2v.signals import MeteredNotifier
    from t2v.usecases.announce import AnnounceDeps

    repos = repos or Repositories.over(settings.jobs_table)
    notifier = Notifier(
        topic_arn=settings.topic_arn,
        event_bus_name=settings.event_bus_name,
        event_source=settings.event_source,
    )
    return AnnounceDeps(
        repo=repos.jobs,
        announcements=repos.announcements,
        notifier=MeteredNotifier(notifier, signals()),
        capacity=build_governor(settings, repos.table),
        include_prompt=settings.outcome_prompts == "Included",
        refunds=repos.budget if settings.refunds_enabled else None,
    )


def build_finalize_deps(settings: FinalizeSettings, *, store: VideoStore | None = None) -> FinalizeDeps:
    from t2v.adapters.download import VideoDownloader  # httpx: only finalize downloads
    from t2v.adapters.storage import VideoStore
    from t2v.media import HostAllowlist
    from t2v.usecases.finalize import FinalizeDeps

    repos = Repositories.over(settings.jobs_table)
    return FinalizeDeps(
        announce=build_announce_deps(settings, repos=repos),
        store=store or VideoStore(),
        downloader=VideoDownloader(HostAllowlist(settings.allowlist), max_bytes=settings.max_video_bytes),
        settings=settings,
        stats=PollStats(repos.table),
    )


@cache
def provider_deps() -> ProviderDeps:
    from t2v.adapters.images import ImageReader
    from t2v.families import FAMILIES
    from t2v.signals import MeteredBudget
    from t2v.usecases.ports import ProviderDeps

    settings = ProviderSettings.from_env()
    client = provider_client_factory(settings)
    repos = Repositories.over(settings.jobs_table)
    return ProviderDeps(
        repo=repos.jobs,
        tasks=repos.tasks,
        budget=MeteredBudget(repos.budget, signals()),
        client=metered(client),
        refresh_key=client.refresh,
        settings=settings,
        stats=PollStats(repos.table, default_scale=settings.generation_time_scale),
        capacity=build_governor(settings, repos.table),
        images=ImageReader(max_bytes=max(f.image_limits.max_bytes for f in FAMILIES if f.image_limits)),
    )


@cache
def push_deps() -> PushDeps:
    """The callback's and the park step's adapters; the token is read only when a push arrives."""
    from t2v.push import PushDeps

    settings = PushSettings.from_env()
    secret_id = settings.callback_secret_id
    tokens = ApiKeyProvider(secret_id, fields=("token",), what="push token") if secret_id else None
    repos = Repositories.over(settings.jobs_table)
    return PushDeps(
        tasks=repos.tasks,
        push=repos.push,
        waker=TaskTokens(),
        token=tokens.get if tokens is not None else (lambda: ""),  # no secret: every push is refused
    )


@cache
def finalize_deps() -> FinalizeDeps:
    return build_finalize_deps(FinalizeSettings.from_env())


@cache
def intake_deps() -> IntakeDeps:
    from t2v.adapters.storage import VideoStore
    from t2v.batches import BatchFile
    from t2v.intake import MAX_PROMPT_FILE_BYTES, IntakeDeps, PromptFile
    from t2v.times import utcnow
    from t2v.usecases.announce import end_job
    from t2v.usecases.batches import open_batch

    settings = IntakeSettings.from_env()
    store = VideoStore()

    def read_object(bucket: str, key: str, version: str | None) -> bytes:
        return store.read_capped(bucket=bucket, key=key, version=version, cap=MAX_PROMPT_FILE_BYTES)

    repos = Repositories.over(settings.jobs_table)
    announce = build_announce_deps(settings, repos=repos)

    def record(execution: ExecutionInput) -> bool:
        now = utcnow()
        _, new = repos.jobs.create_if_absent(
            execution.job_id,
            request=execution.request,
            source=execution.source,
            origin=execution.origin,
            now=now,
            deadline_at=settings.deadline_from(now) + timedelta(seconds=execution.start_delay_seconds),
            owner=settings.job_owner,
        )
        return new

    batches_settings = BatchSettings.from_env()
    # Built on the first .jsonl, once per container (not for every file, nor for .txt/.json alone).
    batch_deps_once = cache(lambda: build_batch_deps(batches_settings))

    def open_file_batch(file: PromptFile) -> str:
        batch = open_batch(
            BatchFile(file.bucket, file.key, file.version, file.version_id),
            owner=settings.job_owner,
            source="s3",
            notify_lines=batches_settings.batch_line_notifications,
            deps=batch_deps_once(),
        )
        return batch.batch_id

    return IntakeDeps(
        starter=Workflow(settings.state_machine_arn),
        record=record,
        reject=lambda job_id, outcome, first: end_job(job_id, outcome, announce, first=first),
        read_object=read_object,
        defaults={"size": settings.default_size, "duration": settings.default_duration},
        input_prefix=settings.input_prefix,
        images=settings.image_place,
        open_batch=open_file_batch if batches_settings.batch_state_machine_arn else None,
        owner=settings.job_owner,
    )


def build_api_deps() -> ApiDeps:
    """Everything the API's use cases need, from the environment; clients are built lazily."""
    from t2v.times import utcnow
    from t2v.usecases.look import LOOK_TIMEOUT_SECONDS, LookDeps
    from t2v.usecases.videos import ApiDeps  # the API's use cases: only the API loads them

    settings = ApiSettings.from_env()
    repos = Repositories.over(settings.jobs_table)
    return ApiDeps(
        repo=repos.jobs,
        budget=repos.budget,
        keys=repos.keys,
        executions=Workflow(settings.state_machine_arn),
        provider=metered(provider_client_factory(settings)),
        outcomes=build_announce_deps(settings, repos=repos),
        settings=settings,
        looks=LookDeps(
            repo=repos.jobs,
            ledger=PollStats(repos.table, default_scale=settings.generation_time_scale),
            # A look never holds a read up for long: a slow provider shows what the record says.
            provider=provider_client_factory(settings, timeout_seconds=LOOK_TIMEOUT_SECONDS),
            policy=settings.look_policy(),
            clock=utcnow,
        ),
    )


def build_api_reads() -> ReadSide:
    """What the API's views need besides the records: the store (video URLs), the tier timings."""
    from t2v.adapters.capacity_leases import CapacityLeases
    from t2v.adapters.storage import VideoStore
    from t2v.api.edge import ReadSide  # the API's views: only the API loads them

    settings = ApiSettings.from_env()
    return ReadSide(
        store=VideoStore(),
        timings=PollStats(settings.jobs_table, default_scale=settings.generation_time_scale),
        queue=CapacityLeases(settings.jobs_table, ceiling=settings.provider_max_tasks_in_flight),
    )


@cache
def sweep_deps() -> SweepDeps:
    from t2v.sweeper import SweepDeps

    settings = SweeperSettings.from_env()
    repos = Repositories.over(settings.jobs_table)
    outcomes = build_announce_deps(settings, repos=repos)
    return SweepDeps(
        repo=repos.jobs,
        executions=Workflow(settings.state_machine_arn),
        provider=metered(provider_client_factory(settings)),
        outcomes=outcomes,
        settings=settings,
        capacity=outcomes.capacity,
        signals=signals(),
        backfill=repos.jobs.backfill_owner_status,
    )


def build_batch_deps(
    settings: BatchSettings | None = None, *, cancel_job: Callable[..., None] | None = None
) -> BatchDeps:
    """What opening, running, canceling and collecting batches needs (t2v.usecases.batches)."""
    from t2v.adapters.batches_repo import BatchesRepository
    from t2v.adapters.capacity_leases import CapacityLeases
    from t2v.adapters.notifier import Notifier
    from t2v.adapters.storage import VideoStore
    from t2v.batches import Line, expected_seconds
    from t2v.billing import Caps
    from t2v.families import tier_of
    from t2v.schedule import quantile
    from t2v.usecases.batches import BatchDeps

    settings = settings or BatchSettings.from_env()
    repos = Repositories.over(settings.jobs_table)
    stats = PollStats(repos.table, default_scale=settings.generation_time_scale)
    leases = CapacityLeases(repos.table, ceiling=settings.provider_max_tasks_in_flight)

    def estimate(lines: list[Line]) -> tuple[float, int]:
        """The lines' time at the learned cap: each line's tier's median queue and run seconds."""
        slots = max(1, min(leases.state().working.cap, settings.batch_lines_in_flight))
        per_tier: dict[object, float] = {}
        seconds: list[float] = []
        for line in lines:
            if line.request is None:
                continue
            tier = tier_of(line.request)
            if tier not in per_tier:
                history = stats.history(tier)
                per_tier[tier] = quantile(sorted(history.queue), 0.5) + quantile(sorted(history.run), 0.5)
            seconds.append(per_tier[tier])
        return expected_seconds(seconds, slots), slots

    caps = None
    if settings.budgets_on:
        caps = Caps(
            account=settings.daily_budget_seconds, caller=settings.caller_daily_budget_seconds, owner=None
        )
    return BatchDeps(
        batches=BatchesRepository(repos.table),
        announce=build_announce_deps(settings, repos=repos),
        store=VideoStore(),
        notifier=Notifier(
            topic_arn=settings.topic_arn,
            event_bus_name=settings.event_bus_name,
            event_source=settings.event_source,
        ),
        starter=Workflow(settings.batch_state_machine_arn or ""),
        bucket=settings.output_bucket or "",
        results_prefix=settings.results_prefix,
        defaults={"size": settings.default_size, "duration": settings.default_duration},
        place=settings.image_place,
        caps=caps,
        max_batch_seconds=settings.max_batch_seconds,
        estimate=estimate,
        cancel_job=cancel_job,
        notify_lines=settings.batch_line_notifications,
    )


@cache
def batch_deps() -> BatchDeps:
    return build_batch_deps()


def build_api_batches(api: ApiDeps) -> BatchDeps | None:
    """The API's batches (None when the stack runs none): a batch's cancel cancels its lines as a
    user's DELETE of each would (`cancel_video`, as their owner)."""
    from t2v.usecases.videos import Caller, cancel_video

    settings = BatchSettings.from_env()
    if not settings.batch_state_machine_arn:
        return None

    def cancel_job(job: JobRecord) -> None:
        cancel_video(job.job_id, Caller(principal=job.owner or "", admin=True), api)

    return build_batch_deps(settings, cancel_job=cancel_job)
