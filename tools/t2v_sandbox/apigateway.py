"""HTTP front for a template's REST API: requests become API Gateway (v1) proxy events for the Lambda."""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from t2v_sandbox.identities import SANDBOX_ACCOUNT
from t2v_sandbox.provisioners import ApiSpec

LOG = logging.getLogger("t2v_sandbox.api")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_LAMBDA_URI = re.compile(
    r"arn:aws[\w-]*:apigateway:[\w-]+:lambda:path/[\d-]+/functions/(?P<fn>.+)/invocations$"
)
_AUTH_HEADER = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<cred>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<sig>[0-9a-f]+)"
)
_MISSING_TOKEN = {"message": "Missing Authentication Token"}
_MAX_CLOCK_SKEW_SECONDS = 300  # API Gateway refuses signatures more than 5 minutes off


class ApiConfigError(Exception):
    """The API's OpenAPI body uses something the front cannot serve; the message names it."""


@dataclass
class Route:
    resource: str
    method: str
    pattern: re.Pattern[str]
    function_arn: str
    auth: str  # "NONE" | "AWS_IAM" | "API_KEY"


def _compile(resource: str) -> re.Pattern[str]:
    regex = ""
    for part in re.split(r"(\{[^}]+\})", resource):
        if part.startswith("{") and part.endswith("+}"):
            regex += f"(?P<{part[1:-2]}>.+)"
        elif part.startswith("{"):
            regex += f"(?P<{part[1:-1]}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(f"^{regex}$")


def _auth_kind(security: list[dict[str, Any]], definitions: dict[str, Any], where: str) -> str:
    kinds = set()
    for requirement in security:
        for name in requirement:
            if name == "NONE" and name not in definitions:
                continue  # SAM's `Auth: {Authorizer: NONE}`: a public route under a default authorizer
            definition = definitions.get(name, {})
            if definition.get("x-amazon-apigateway-authtype") == "awsSigv4":
                kinds.add("AWS_IAM")
            elif definition.get("type") == "apiKey" and definition.get("name", "").lower() == "x-api-key":
                kinds.add("API_KEY")
            else:
                raise ApiConfigError(f"{where}: authorizer {name!r} is not supported by the sandbox front")
    # Both can be required at once; IAM is checked first, then the key.
    return "+".join(sorted(kinds)) or "NONE"


def build_routes(spec: ApiSpec) -> list[Route]:
    body = spec.body
    definitions = body.get("securityDefinitions") or body.get("components", {}).get("securitySchemes", {})
    default_security = body.get("security", [])
    routes = []
    for resource, operations in body.get("paths", {}).items():
        for method, operation in operations.items():
            verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
            if verb != "ANY" and method not in _METHODS:
                continue
            where = f"{spec.logical_id} {verb} {resource}"
            integration = operation.get("x-amazon-apigateway-integration", {})
            match = _LAMBDA_URI.match(str(integration.get("uri", "")))
            if integration.get("type") != "aws_proxy" or match is None:
                raise ApiConfigError(f"{where}: only Lambda proxy (aws_proxy) integrations are served")
            auth = _auth_kind(operation.get("security", default_security), definitions, where)
            routes.append(Route(resource, verb, _compile(resource), match.group("fn"), auth))
    return routes


@dataclass
class FrontSettings:
    region: str
    credentials: dict[str, str]  # access key id -> secret
    principals: dict[str, str]  # access key id -> its IAM user ARN (requestContext.identity.userArn)
    api_keys: Callable[[], list[str]]
    invoke: Callable[[str, dict[str, Any]], tuple[dict[str, Any] | None, bool]]


def _scope_error(scope: list[str], stamp: str) -> str | None:
    """What is wrong with the credential scope or the signing time, as API Gateway words it."""
    if len(scope) != 5 or scope[4] != "aws4_request":
        return "Credential should be scoped to a valid region, service and date, ending in aws4_request."
    try:
        signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    if abs((dt.datetime.now(dt.UTC) - signed_at).total_seconds()) > _MAX_CLOCK_SKEW_SECONDS:
        return f"Signature expired: {stamp} is not within 5 minutes of the server's time."
    return None


def _verify_sigv4(
    *, method: str, host: str, raw_path: str, headers: dict[str, str], body: bytes, settings: FrontSettings
) -> str | None:
    """None when the signature is valid for one of the sandbox credentials, else the error message."""
    match = _AUTH_HEADER.match(headers.get("authorization", ""))
    if match is None:
        return "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'."
    scope = match.group("cred").split("/")
    if problem := _scope_error(scope, headers.get("x-amz-date", "")):
        return problem
    access_key, _date, region, service, _ = scope
    secret = settings.credentials.get(access_key)
    if secret is None:
        return "The security token included in the request is invalid."
    signed = match.group("signed").split(";")
    request = AWSRequest(
        method=method,
        url=f"http://{host}{raw_path}",
        data=body,
        headers={name: headers.get(name, "") for name in signed if name != "host"},
    )
    request.context["timestamp"] = headers.get("x-amz-date", "")
    signer = SigV4Auth(Credentials(access_key, secret, headers.get("x-amz-security-token")), service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, match.group("sig")):
        return (
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return None


class _FrontServer(ThreadingHTTPServer):
    """API Gateway takes every connection; http.server's listen backlog of 5 reset about 20
    simultaneous clients, understating every concurrent measurement made through the sandbox."""

    request_queue_size = 1024
    daemon_threads = True


class ApiFront:
    """A threaded HTTP server for one REST API; paths are /<stage>/<resource path>."""

    def __init__(
        self, spec: ApiSpec, settings: FrontSettings, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.routes = build_routes(spec)
        self.stages = spec.stages or ["Prod"]
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                LOG.debug("%s " + format, spec.logical_id, *args)

            def _handle(self) -> None:
                front.handle(self)

            def __getattr__(self, name: str) -> Any:
                # Any other method (TRACE, QUERY, ...) reaches the router too, which refuses it as
                # API Gateway does (403 Missing Authentication Token), not http.server's 501 page.
                if name.startswith("do_"):
                    return self._handle
                raise AttributeError(name)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle  # noqa: N815

        self._server = _FrontServer((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"api-{spec.logical_id}", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}/{self.stages[0]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method in {method, "ANY"} and (match := route.pattern.match(path)):
                return route, {k: unquote(v) for k, v in match.groupdict().items()}
        return None

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        split = urlsplit(request.path)
        stage, _, rest = split.path.lstrip("/").partition("/")
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in request.headers.items()}
        found = self._route(request.command, "/" + rest) if stage in self.stages else None
        if found is None:
            _reply(request, 403, {"Content-Type": "application/json"}, json.dumps(_MISSING_TOKEN).encode())
            return
        route, path_params = found
        denial = self._authorize(route, request.command, split, headers, body)
        if denial is not None:
            _reply(request, 403, {"Content-Type": "application/json"}, json.dumps(denial).encode())
            return
        event = self._event(
            request,
            route=route,
            stage=stage,
            path="/" + rest,
            query=split.query,
            path_params=path_params,
            headers=headers,
            body=body,
        )
        payload, errored = self.settings.invoke(route.function_arn, event)
        status, out_headers, out_body = _proxy_response(payload, errored)
        out_headers.setdefault("x-amzn-RequestId", event["requestContext"]["requestId"])
        _reply(request, status, out_headers, out_body)

    def _authorize(
        self, route: Route, method: str, split: Any, headers: dict[str, str], body: bytes
    ) -> dict[str, str] | None:
        if "AWS_IAM" in route.auth:
            if not headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
                return _MISSING_TOKEN
            raw_path = split.path + (f"?{split.query}" if split.query else "")
            error = _verify_sigv4(
                method=method,
                host=headers.get("host", ""),
                raw_path=raw_path,
                headers=headers,
                body=body,
                settings=self.settings,
            )
            if error is not None:
                return {"message": error}
        if "API_KEY" in route.auth and headers.get("x-api-key") not in self.settings.api_keys():
            return {"message": "Forbidden"}
        return None

    def _event(
        self,
        request: BaseHTTPRequestHandler,
        *,
        route: Route,
        stage: str,
        path: str,
        query: str,
        path_params: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        multi_headers: dict[str, list[str]] = {}
        for key, value in request.headers.items():
            multi_headers.setdefault(key, []).append(value)
        multi_query = parse_qs(query, keep_blank_values=True)
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
        now = dt.datetime.now(dt.UTC)
        access_key = ""
        if match := _AUTH_HEADER.match(headers.get("authorization", "")):
            access_key = match.group("cred").split("/")[0]
        account = SANDBOX_ACCOUNT
        return {
            "resource": route.resource,
            "path": path,
            "httpMethod": request.command,
            "headers": {k: v[-1] for k, v in multi_headers.items()},
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_params or None,
            "stageVariables": None,
            "body": text if body else None,
            "isBase64Encoded": is_b64,
            "requestContext": {
                "resourcePath": route.resource,
                "httpMethod": request.command,
                "path": f"/{stage}{path}",
                "stage": stage,
                "requestId": str(uuid.uuid4()),
                "extendedRequestId": uuid.uuid4().hex[:16],
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(time.time() * 1000),
                "accountId": account,
                "apiId": self.spec.api_id,
                "protocol": request.request_version,
                "identity": {
                    "sourceIp": request.client_address[0],
                    "userAgent": headers.get("user-agent"),
                    "accessKey": access_key or None,
                    "accountId": account if access_key else None,
                    "caller": access_key or None,
                    "user": access_key or None,
                    "userArn": self.settings.principals.get(access_key),
                    "apiKey": headers.get("x-api-key"),
                },
            },
        }


def _proxy_response(payload: dict[str, Any] | None, errored: bool) -> tuple[int, dict[str, str], bytes]:
    internal = (
        502,
        {"Content-Type": "application/json"},
        json.dumps({"message": "Internal server error"}).encode(),
    )
    if errored or not isinstance(payload, dict) or "statusCode" not in payload:
        return internal
    headers = {str(k): str(v) for k, v in (payload.get("headers") or {}).items()}
    for key, values in (payload.get("multiValueHeaders") or {}).items():
        headers[str(key)] = ", ".join(str(v) for v in values)
    body = payload.get("body") or ""
    data = base64.b64decode(body) if payload.get("isBase64Encoded") else str(body).encode()
    try:
        return int(payload["statusCode"]), headers, data
    except (TypeError, ValueError):
        return internal


def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    try:
        _send(request, status, headers, body)
    except (BrokenPipeError, ConnectionResetError):
        # The client gave up first (e.g. the emulator's push timed out): API Gateway drops it too.
        LOG.debug("client closed the connection before the answer")


def _send(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    request.send_response(status)
    for key, value in headers.items():
        if key.lower() not in {"content-length", "connection"}:
            request.send_header(key, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)
