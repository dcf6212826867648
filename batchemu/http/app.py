"""The one WSGI application. Every request, signed or not, API, logs or dashboard, travels the same chain
of steps over an Exchange (Pipeline.chain):

    route         which protocol and operation the method, path and X-Amz-Target name (or batchemu's own
                  endpoints: health, faults, the event stream, the dashboard)
    authenticate  the SigV4 signature, when the server has keys (the health endpoint is always open)
    parse         the body and query, validated against the operation's input shape (a request that
                  names no operation is refused here, once its signature was checked)
    handle        the operation's handler: a service function, batchemu's own endpoints, or the dashboard
    serialize     the result against the operation's output shape

A step ends the exchange early by setting `exchange.answer`; whatever goes wrong on the way is answered by
batchemu.http.rendering, the one JSON error renderer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.model import OperationModel
from flask import Blueprint, Flask
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request

from batchemu import __version__
from batchemu.context import Context
from batchemu.errors import ClientException, NotBuiltError, ServiceError
from batchemu.http import rendering
from batchemu.http.dashboard import is_dashboard_request
from batchemu.http.rendering import JSON, MAX_BODY, Answer
from batchemu.protocol.model import RestRouter, service_model
from batchemu.protocol.parser import load_json_object, parse_json, parse_rest_json
from batchemu.protocol.serializer import serialize
from batchemu.protocol.sigv4 import AuthError, verify

__all__ = ["MAX_BODY", "Pipeline", "create_app", "health_report"]

# AWS Batch's own request size quotas (user guide, "AWS Batch service quotas"), answered as a ClientException.
# The SubmitJob text is AWS's, as observed; the other texts are ours in the same form.
OPERATION_BODY_LIMITS = {
    "SubmitJob": (30 * 1024, "Job size must be less than 30 KiB, got {kib} KiB"),
    "RegisterJobDefinition": (24 * 1024, "Job definition size must be less than 24 KiB, got {kib} KiB"),
    "SubmitServiceJob": (30 * 1024, "Service job request size must be less than 30 KiB, got {kib} KiB"),
}

JSON_TARGET_SERVICES = {"Logs_20140328": "logs"}
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
HEALTH_PATH = "/_batchemu/health"
FAULTS_PATH = "/_batchemu/faults"
EVENTS_PATH = "/_batchemu/events"
READS = ("GET", "HEAD")


class _Request(Request):
    # One byte over the limit, so that Exchange.body() can tell a truncated chunked body from a full one.
    max_content_length = MAX_BODY + 1


def check_body_limit(operation: str, body: bytes) -> None:
    limit = OPERATION_BODY_LIMITS.get(operation)
    if limit is not None and len(body) > limit[0]:
        raise ClientException(limit[1].format(kib=math.ceil(len(body) / 1024)))


def _check_complete(body: bytes, expected: int | None) -> None:
    if expected is not None and len(body) < expected:
        raise ClientException(f"Request body ended after {len(body)} of {expected} bytes (Content-Length)")


class Exchange:
    """One request on its way through the pipeline, and what the steps found out about it."""

    def __init__(self, environ: dict) -> None:
        self.environ = environ
        self.method: str = environ["REQUEST_METHOD"]
        self.raw_uri: str = environ.get("REQUEST_URI") or environ.get("RAW_URI") or ""
        self.path = ""  # set by the route step
        self.route: Route = UNROUTED  # until the route step has run
        self.params: dict = {}
        self.result: Any = None
        self.answer: Callable[[dict, Callable], Iterable[bytes]] | None = None
        self._request: Request | None = None
        self._body: bytes | None = None

    @property
    def request(self) -> Request:
        """werkzeug's view of the request, made when a step needs headers, the query or a chunked body."""
        if self._request is None:
            self._request = _Request(self.environ)
        return self._request

    def body(self) -> bytes:
        """The body, or a 413 when it exceeds MAX_BODY (werkzeug truncates a chunked body at the limit
        silently), or a ClientException when the connection ended before Content-Length bytes arrived."""
        if self._body is None:
            length = self.environ.get("CONTENT_LENGTH") or ""
            if self._request is None and "HTTP_TRANSFER_ENCODING" not in self.environ and length.isascii() \
                    and length.isdigit() and int(length) <= MAX_BODY:
                # The common case, read without werkzeug's stream wrappers.
                self._body = self.environ["wsgi.input"].read(int(length))
                _check_complete(self._body, int(length))
            else:
                self._body = self._read_with_werkzeug()
        return self._body

    def _read_with_werkzeug(self) -> bytes:
        body = self.request.get_data(cache=True)
        if len(body) > MAX_BODY:
            raise RequestEntityTooLarge()
        if "chunked" not in self.environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            _check_complete(body, self.request.content_length)
        return body

    def query(self) -> dict[str, list[str]]:
        return self.request.args.to_dict(flat=False) if self.environ.get("QUERY_STRING") else {}

    def raw_path_and_query(self) -> tuple[str, list[tuple[str, str]]]:
        """The request path and query (key, value) pairs as the client sent them, still percent-encoded."""
        if self.raw_uri:
            parts = urlsplit(self.raw_uri)
            path, query = parts.path, parts.query
        else:
            path, query = self.environ.get("PATH_INFO", "/"), self.environ.get("QUERY_STRING", "")
        return path, [(k, v) for k, _, v in (p.partition("=") for p in query.split("&") if p)]


class Protocol:
    """How one wire format reads a request, writes a result and names its errors (Batch's rest-json)."""

    content_type = JSON
    signing_name = "batch"
    refused_status = 403  # a bad signature

    def parse(self, route: Route, exchange: Exchange) -> dict:
        body = exchange.body()
        params = parse_rest_json(route.operation, body, route.labels, exchange.query())
        check_body_limit(route.name, body)
        return params

    def answer(self, route: Route, result: Any) -> Callable:
        return Answer(200, serialize(route.operation, result), self.content_type)

    def error(self, exc: ServiceError) -> Answer:
        return rendering.service_error(exc, self.content_type)


class AwsJson(Protocol):
    """awsJson 1.1 (CloudWatch Logs): the operation is named by X-Amz-Target, the whole body is the input."""

    content_type = JSON_CONTENT_TYPE
    signing_name = "logs"
    refused_status = 400  # awsJson services answer every client error with 400

    def parse(self, route: Route, exchange: Exchange) -> dict:
        return parse_json(route.operation, exchange.body())

    def error(self, exc: ServiceError) -> Answer:
        # awsJson services name validation failures InvalidParameterException.
        code = "InvalidParameterException" if exc.code == "ClientException" else exc.code
        return rendering.error(code, exc.message, exc.status, self.content_type)


class Internal(Protocol):
    """batchemu's own endpoints under /_batchemu/: a JSON object in, a JSON object out."""

    def parse(self, route: Route, exchange: Exchange) -> dict:
        return load_json_object(exchange.body()) if exchange.method == "POST" else {}

    def answer(self, route: Route, result: Any) -> Callable:
        return Answer(200, json.dumps(result).encode(), self.content_type)


class EventStreamProtocol(Protocol):
    """GET /_batchemu/events: the query and the Last-Event-ID header in, a stream of Server-Sent Events out."""

    def parse(self, route: Route, exchange: Exchange) -> dict:
        params = {name: values[-1] for name, values in exchange.query().items()}
        if "HTTP_LAST_EVENT_ID" in exchange.environ:
            params["lastEventId"] = exchange.environ["HTTP_LAST_EVENT_ID"].strip()
        return params

    def answer(self, route: Route, result: Any) -> Callable:
        return result


class Dashboard(Protocol):
    """The dashboard's pages: its Flask blueprint answers them (HTML, its own error pages)."""

    def parse(self, route: Route, exchange: Exchange) -> dict:
        return {}

    def answer(self, route: Route, result: Any) -> Callable:
        return result


REST_JSON, AWS_JSON, INTERNAL, DASHBOARD, EVENT_STREAM = (Protocol(), AwsJson(), Internal(), Dashboard(),
                                                         EventStreamProtocol())


@dataclass
class Route:
    """Where a request goes: its protocol, operation and handler, or the answer refusing it."""

    protocol: Protocol
    name: str
    handler: Callable[[Context, dict], Any] | None = None
    operation: OperationModel | None = None
    labels: dict[str, str] = field(default_factory=dict)
    refusal: Answer | None = None


UNROUTED = Route(REST_JSON, "")


def _faults_refused(method: str) -> Route:
    message = f"{method} is not allowed on {FAULTS_PATH}; POST {{\"jobId\", \"fault\"}}"
    return Route(INTERNAL, "faults", refusal=rendering.error("MethodNotAllowedException", message, 405))


class Pipeline:
    """The WSGI application of every route; see the module text for the chain of steps."""

    def __init__(self, ctx: Context, handlers: dict[str, Callable], json_handlers: dict[str, dict[str, Callable]],
                 health: Callable[[], dict], faults: Callable[[dict], dict] | None = None,
                 dashboard: Blueprint | None = None, events: Callable[[Context, dict], Any] | None = None) -> None:
        self.ctx = ctx
        self.handlers = handlers
        self.json_handlers = json_handlers
        self.router = RestRouter(service_model("batch"))
        self.health = Route(INTERNAL, "health", lambda ctx, params: health())
        self.faults = Route(INTERNAL, "faults", self._inject(faults))
        self.events = Route(EVENT_STREAM, "events", events)
        self.dashboard = None
        if dashboard is not None:
            pages = Flask("batchemu")
            pages.register_blueprint(dashboard)
            self.dashboard = Route(DASHBOARD, "dashboard", lambda ctx, params: pages)
        self.chain = [self.route, self.authenticate, self.parse, self.handle, self.serialize]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        exchange = Exchange(environ)
        try:
            for step in self.chain:
                step(exchange)
                if exchange.answer is not None:
                    break
        except ServiceError as exc:
            exchange.answer = exchange.route.protocol.error(exc)
        except HTTPException as exc:
            exchange.answer = rendering.http_error(exc)
        except Exception as exc:  # noqa: BLE001 - anything else is a 500 in the same JSON form, and logged
            exchange.answer = rendering.unexpected(exc, exchange.method, environ.get("PATH_INFO", ""))
        assert exchange.answer is not None  # serialize, the last step, always sets one
        return exchange.answer(environ, start_response)

    # -- the steps ---------------------------------------------------------------------------------------
    def route(self, exchange: Exchange) -> None:
        # ARNs arrive in the path with '/' sent as %2F, which WSGI servers disagree on decoding in PATH_INFO:
        # the raw request URI, when the server gives it, is decoded exactly once.
        raw = exchange.raw_uri
        exchange.path = unquote(urlsplit(raw).path, errors="replace") if raw else exchange.request.path
        method, path = exchange.method, exchange.path
        target = exchange.environ.get("HTTP_X_AMZ_TARGET")
        if path == HEALTH_PATH and method in READS:
            exchange.route = self.health
        elif path == EVENTS_PATH and method == "GET":
            exchange.route = self.events
        elif path == FAULTS_PATH:
            exchange.route = self.faults if method == "POST" else _faults_refused(method)
        elif self.dashboard is not None and is_dashboard_request(method, path):
            exchange.route = self.dashboard
        elif target and method == "POST":
            exchange.route = self._json_target(target)
        else:
            exchange.route = self._rest_json(method, path)

    def authenticate(self, exchange: Exchange) -> None:
        """A request signed by none of the configured keys is refused with AWS's answer: 403 from Batch
        (rest-json), 400 from the awsJson services, as each answers its other client errors."""
        credentials = self.ctx.config.auth
        if not credentials or exchange.path == HEALTH_PATH:
            return
        target = exchange.environ.get("HTTP_X_AMZ_TARGET") or ""
        protocol = AWS_JSON if target and exchange.method == "POST" else REST_JSON
        service = JSON_TARGET_SERVICES.get(target.partition(".")[0], "logs") if protocol is AWS_JSON else "batch"
        path, query = exchange.raw_path_and_query()
        request = exchange.request
        try:
            verify(method=exchange.method, raw_path=path, query=query, headers=request.headers,
                   body=lambda: request.get_data(cache=True), services=(service,), credentials=credentials,
                   now=datetime.now(timezone.utc))
        except AuthError as exc:
            exchange.answer = rendering.error(exc.code, exc.message, protocol.refused_status, protocol.content_type)

    def parse(self, exchange: Exchange) -> None:
        route = exchange.route
        if route.refusal is not None:
            exchange.answer = route.refusal
            return
        exchange.params = route.protocol.parse(route, exchange)

    def handle(self, exchange: Exchange) -> None:
        route = exchange.route
        if route.handler is None:
            raise NotBuiltError(route.name)
        exchange.result = route.handler(self.ctx, exchange.params)

    def serialize(self, exchange: Exchange) -> None:
        exchange.answer = exchange.route.protocol.answer(exchange.route, exchange.result)

    # -- routes ------------------------------------------------------------------------------------------
    def _rest_json(self, method: str, path: str) -> Route:
        matched = self.router.match(method, path)
        if matched is not None:
            operation, labels = matched
            return Route(REST_JSON, operation.name, self.handlers.get(operation.name), operation, labels)
        if self.router.allowed_methods(path):
            refusal = rendering.error("MethodNotAllowedException", f"{method} is not allowed on {path}", 405)
        else:
            refusal = rendering.error("UnknownOperationException",
                                      f"No AWS Batch operation is routed at {method} {path}", 404)
        return Route(REST_JSON, "", refusal=refusal)

    def _json_target(self, target: str) -> Route:
        prefix, _, name = target.partition(".")
        service = JSON_TARGET_SERVICES.get(prefix)
        if service is None or service not in self.json_handlers:
            return Route(AWS_JSON, target, refusal=rendering.error(
                "UnknownOperationException", f"Unknown target {target}", 400, JSON_CONTENT_TYPE))
        model = service_model(service)
        if name not in model.operation_names:
            return Route(AWS_JSON, target, refusal=rendering.error(
                "UnknownOperationException", f"Unknown operation {target}", 400, JSON_CONTENT_TYPE))
        return Route(AWS_JSON, f"{service} {name}", self.json_handlers[service].get(name),
                     model.operation_model(name))

    @staticmethod
    def _inject(faults: Callable[[dict], dict] | None) -> Callable[[Context, dict], dict]:
        def inject(ctx: Context, params: dict) -> dict:
            if faults is None:
                raise ClientException("fault injection is not available on this server")
            return faults(params)
        return inject


def create_app(ctx: Context, handlers: dict[str, Callable], json_handlers: dict[str, dict[str, Callable]],
               health: Callable[[], dict], faults: Callable[[dict], dict] | None = None,
               dashboard: Blueprint | None = None, events: Callable[[Context, dict], Any] | None = None) -> Pipeline:
    """The application serving Batch (rest-json) and the awsJson services in `json_handlers` on one port,
    batchemu's own endpoints under /_batchemu/ (health; fault injection when `faults` is given; the event
    stream when `events` is), and the `dashboard` blueprint, which owns `GET /` (every other method on `/`
    stays the protocol's)."""
    return Pipeline(ctx, handlers, json_handlers, health, faults, dashboard, events)


def health_report(ctx: Context, engine_status: Callable[[], tuple[bool, str]],
                  cluster: Callable[[], dict | None] = lambda: None) -> dict:
    """Version, state and the active executor; `docker` says whether the Docker Engine answers when it is
    the executor (kept under that name for clients that read it). An executor of several machines (swarm)
    adds its nodes and their free capacity under `executor.nodes`."""
    reachable, detail = engine_status()
    executor: dict[str, Any] = {"name": ctx.config.executor, "reachable": reachable, "detail": detail}
    report: dict[str, Any] = {"service": "batchemu", "version": __version__, "state": ctx.config.state,
                              "region": ctx.config.region, "accountId": ctx.config.account_id, "executor": executor}
    nodes = cluster() if reachable else None
    if nodes is not None:
        executor.update(nodes)
    if ctx.config.executor == "docker":
        report["docker"] = {"reachable": reachable, "detail": detail}
    return report
