"""The video API as a user sees it, shared by the `t2v` command and the `t2v console`.

Modules: errors (exit codes, one line per API error), jobs (terminal statuses, progress lines,
request bodies), target (where the API is), api (`ApiClient`: signed calls, wait, download),
place (a stack's AWS clients, bucket, topic and bus beyond its API).
"""

from t2v_client.api import ApiClient, ApiResponse
from t2v_client.errors import CliError, ExitCode, error_line, exit_code_for_http
from t2v_client.jobs import (
    TERMINAL_BAD,
    TERMINAL_OK,
    ProgressFacts,
    exit_code_for_status,
    format_progress,
    progress_facts,
    request_body,
    summary_line,
)
from t2v_client.place import Place, check_place_options, resolve_place, sandbox_place, stack_place
from t2v_client.target import (
    DEFAULT_ENDPOINTS,
    IDENTITY_ENV,
    SandboxIdentity,
    Target,
    api_url_from_outputs,
    pick_identity,
    sandbox_identities,
    sandbox_target,
)

__all__ = [
    "DEFAULT_ENDPOINTS",
    "IDENTITY_ENV",
    "TERMINAL_BAD",
    "TERMINAL_OK",
    "ApiClient",
    "ApiResponse",
    "CliError",
    "ExitCode",
    "Place",
    "ProgressFacts",
    "SandboxIdentity",
    "Target",
    "api_url_from_outputs",
    "check_place_options",
    "error_line",
    "exit_code_for_http",
    "exit_code_for_status",
    "format_progress",
    "pick_identity",
    "progress_facts",
    "request_body",
    "resolve_place",
    "sandbox_identities",
    "sandbox_place",
    "sandbox_target",
    "stack_place",
    "summary_line",
]
