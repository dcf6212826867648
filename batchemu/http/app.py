"""The Flask application: routes every request through the protocol layer to a service handler."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES

from batchemu import __version__, ids
from batchemu.errors import ClientException, NotBuiltError, ServiceError
from batchemu.protocol.model import RestRouter, service_model
from batchemu.protocol.parser import load_json_object, parse_json, parse_rest_json
from batchemu.protocol.serializer import error_body, serialize
from batchemu.protocol.sigv4 import AuthError, verify
from batchemu.service.context import Context

log = logging.getLogger("batchemu")

MAX_BODY = 8 * 1024 * 1024

# AWS Batch's own request size quotas (user guide, "AWS Batch service quotas"), answered as a ClientException.
# The SubmitJob text is AWS's, as observed; the RegisterJobDefinition text is ours in the same form.
OPERATION_BODY_LIMITS = {
    "SubmitJob": (30 * 1024, "Job size must be less than 30 KiB, got {kib} KiB"),
    "RegisterJobDefinition": (24 * 1024, "Job definition size must be less than 24 KiB, got {kib} KiB"),
}

# Methods the catch-all route takes, so that its answer (404 or 405 naming the operation) is ours; any other
# method reaches the 405 handler, which answers the same way.
ROUTED_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT"]

JSON_TARGET_SERVICES = {"Logs_20140328": "logs"}
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
HEALTH_PATH = "/_batchemu/health"
FAULTS_PATH = "/_batchemu/faults"


def _headers(body: bytes, error_code: str | None, content_type: str) -> list[tuple[str, str]]:
    """The headers of every answer the app gives, success or error."""
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))),
               ("x-amzn-RequestId", ids.uuid4_str())]
    if error_code:
        headers.append(("x-amzn-ErrorType", error_code))
    return headers


def _response(status: int, body: bytes, error_code: str | None = None,
              content_type: str = "application/json") -> Response:
    return Response(body, status=status, headers=_headers(body, error_code, content_type))


def _check_complete(body: bytes, expected: int | None) -> None:
    if expected is not None and len(body) < expected:
        raise ClientException(f"Request body ended after {len(body)} of {expected} bytes (Content-Length)")


def request_body() -> bytes:
    """The body, or a 413 when it exceeds MAX_BODY (werkzeug truncates a chunked body at the limit silently),
    or a ClientException when the connection ended before Content-Length bytes arrived."""
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY:
        raise RequestEntityTooLarge()
    if "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        _check_complete(body, request.content_length)
    return body


def check_body_limit(operation: str, body: bytes) -> None:
    limit = OPERATION_BODY_LIMITS.get(operation)
    if limit is not None and len(body) > limit[0]:
        raise ClientException(limit[1].format(kib=math.ceil(len(body) / 1024)))


def error_response(code: str, message: str, status: int, content_type: str = "application/json") -> Response:
    return _response(status, error_body(code, message), code, content_type)


def decoded_path() -> str:
    """The request path percent-decoded exactly once. ARNs arrive in the path with '/' sent as %2F, which
    WSGI servers disagree on decoding in PATH_INFO, so read the raw request URI when the server gives it."""
    raw = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI")
    if raw:
        return unquote(urlsplit(raw).path, errors="replace")
    return request.path


def raw_path_and_query() -> tuple[str, list[tuple[str, str]]]:
    """The request path and query (key, value) pairs as the client sent them, still percent-encoded."""
    raw = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI")
    if raw:
        parts = urlsplit(raw)
        path, query = parts.path, parts.query
    else:
        path, query = request.environ.get("PATH_INFO", "/"), request.environ.get("QUERY_STRING", "")
    pairs = [(k, v) for k, _, v in (p.partition("=") for p in query.split("&") if p)]
    return path, pairs


def authenticate(credentials: dict[str, str]) -> Response | None:
    """None when the request carries a valid SigV4 signature by one of `credentials`, else AWS's refusal:
    403 from Batch (rest-json), 400 from the awsJson services, as each answers its other client errors."""
    target = request.headers.get("X-Amz-Target")
    is_json = bool(target) and request.method == "POST"
    service = JSON_TARGET_SERVICES.get(target.partition(".")[0], "logs") if is_json else "batch"
    path, query = raw_path_and_query()
    try:
        verify(method=request.method, raw_path=path, query=query, headers=request.headers,
               body=lambda: request.get_data(cache=True), services=(service,), credentials=credentials,
               now=datetime.now(timezone.utc))
    except AuthError as exc:
        if is_json:
            return error_response(exc.code, exc.message, 400, JSON_CONTENT_TYPE)
        return error_response(exc.code, exc.message, 403)
    return None


def create_app(ctx: Context, handlers: dict[str, Callable], json_handlers: dict[str, dict[str, Callable]],
               health: Callable[[], dict], faults: Callable[[dict], dict] | None = None,
               dashboard: Blueprint | None = None) -> Flask:
    """An app serving Batch (rest-json) and the awsJson services in `json_handlers` on one port, batchemu's
    own endpoints under /_batchemu/ (health; fault injection when `faults` is given), and the `dashboard`
    blueprint, which owns `GET /` (every other method on `/` stays the protocol's)."""
    app = Flask("batchemu")
    # One byte over the limit, so that request_body() can tell a truncated chunked body from a full one.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY + 1
    router = RestRouter(service_model("batch"))

    def no_route(method: str, path: str) -> Response:
        if router.allowed_methods(path):
            return error_response("MethodNotAllowedException", f"{method} is not allowed on {path}", 405)
        return error_response("UnknownOperationException",
                              f"No AWS Batch operation is routed at {method} {path}", 404)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if exc.code == 405 and not request.path.startswith("/_batchemu/"):
            return no_route(request.method, decoded_path())
        names = {404: "UnknownOperationException", 405: "MethodNotAllowedException",
                 413: "RequestEntityTooLargeException"}
        code = names.get(exc.code or 500, "ClientException" if (exc.code or 500) < 500 else "ServerException")
        return error_response(code, exc.description or exc.name, exc.code or 500)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response("ServerException", f"Internal error ({type(exc).__name__})", 500)

    if ctx.config.auth:
        @app.before_request
        def check_signature() -> Response | None:
            if request.path == HEALTH_PATH:
                return None
            return authenticate(ctx.config.auth)

    @app.get(HEALTH_PATH)
    def health_endpoint() -> Response:
        import json
        return _response(200, json.dumps(health()).encode())

    @app.route(FAULTS_PATH, methods=ROUTED_METHODS, provide_automatic_options=False)
    def faults_endpoint() -> Response:
        import json
        if request.method != "POST":
            return error_response("MethodNotAllowedException",
                                  f"{request.method} is not allowed on {FAULTS_PATH}; POST {{\"jobId\", \"fault\"}}", 405)
        try:
            if faults is None:
                raise ClientException("fault injection is not available on this server")
            result = faults(load_json_object(request_body()))
        except ServiceError as exc:
            return error_response(exc.code, exc.message, exc.status)
        return _response(200, json.dumps(result).encode())

    root_methods = ROUTED_METHODS
    if dashboard is not None:
        app.register_blueprint(dashboard)
        root_methods = [method for method in ROUTED_METHODS if method not in ("GET", "HEAD")]

    @app.route("/", defaults={"path": ""}, methods=root_methods, provide_automatic_options=False)
    @app.route("/<path:path>", methods=ROUTED_METHODS, provide_automatic_options=False)
    def dispatch(path: str) -> Response:
        target = request.headers.get("X-Amz-Target")
        if target and request.method == "POST":
            return _dispatch_json_target(target)
        path = decoded_path()
        matched = router.match(request.method, path)
        if matched is None:
            return no_route(request.method, path)
        operation, labels = matched
        return _response(*run_operation(operation, labels, request.args.to_dict(flat=False), request_body))

    def run_operation(operation, labels: dict[str, str], query: dict[str, list[str]],
                      read_body: Callable[[], bytes]) -> tuple[int, bytes, str | None]:
        """(status, body, error code) of one rest-json operation."""
        handler = handlers.get(operation.name)
        try:
            body = read_body()
            params = parse_rest_json(operation, body, labels, query)
            check_body_limit(operation.name, body)
            if handler is None:
                raise NotBuiltError(operation.name)
            result = handler(ctx, params)
        except ServiceError as exc:
            return exc.status, error_body(exc.code, exc.message), exc.code
        return 200, serialize(operation, result), None

    def _dispatch_json_target(target: str) -> Response:
        content_type = JSON_CONTENT_TYPE
        prefix, _, name = target.partition(".")
        service = JSON_TARGET_SERVICES.get(prefix)
        if service is None or service not in json_handlers:
            return error_response("UnknownOperationException", f"Unknown target {target}", 400, content_type)
        model = service_model(service)
        if name not in model.operation_names:
            return error_response("UnknownOperationException", f"Unknown operation {target}", 400, content_type)
        operation = model.operation_model(name)
        handler = json_handlers[service].get(name)
        try:
            params = parse_json(operation, request_body())
            if handler is None:
                raise NotBuiltError(f"{service} {name}")
            result = handler(ctx, params)
        except ClientException as exc:
            # awsJson services name validation failures InvalidParameterException.
            code = "InvalidParameterException" if exc.code == "ClientException" else exc.code
            return error_response(code, exc.message, exc.status, content_type)
        except ServiceError as exc:
            return error_response(exc.code, exc.message, exc.status, content_type)
        return _response(200, serialize(operation, result), content_type=content_type)

    if not ctx.config.auth:  # signed requests take the Flask path, where the signature is checked
        app.wsgi_app = app.operation_fast_path = OperationFastPath(app.wsgi_app, router, run_operation)
    return app


def _status_line(status: int) -> str:
    return f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown').upper()}"  # as werkzeug writes it


class OperationFastPath:
    """WSGI middleware answering the plain case of a rest-json operation without Flask's request and
    response objects, which cost more CPU than a SubmitJob itself: a POST to an operation's literal route
    (no labels, no query string, no percent-escapes) with a Content-Length within MAX_BODY. Everything
    else, and every HTTP-level error, goes on to the Flask app. Answers are the same either way: the same
    run_operation, headers and JSON error renderer."""

    def __init__(self, wsgi_app: Callable, router: RestRouter, run_operation: Callable) -> None:
        self.wsgi_app = wsgi_app
        self.router = router
        self.run_operation = run_operation

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        operation = self._operation(environ)
        if operation is None:
            return self.wsgi_app(environ, start_response)
        expected = int(environ["CONTENT_LENGTH"])

        def read_body() -> bytes:
            body = environ["wsgi.input"].read(expected)
            _check_complete(body, expected)
            return body
        status, headers, body = self._answer(operation, read_body, environ.get("PATH_INFO"))
        start_response(status, headers)
        return [body]

    def answer(self, path: str, body: bytes) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """(status line, headers, body) of `POST path` with this whole body, or None when `path` is not an
        operation's literal route (batchemu.http.front answers plain requests with this)."""
        operation = self.router.literal("POST", path)
        if operation is None:
            return None
        return self._answer(operation, lambda: body, path)

    def _answer(self, operation, read_body: Callable[[], bytes], path) -> tuple[str, list[tuple[str, str]], bytes]:
        try:
            status, body, error_code = self.run_operation(operation, {}, {}, read_body)
        except Exception as exc:  # the same answer as the Flask app's handler of unexpected errors
            log.exception("unhandled error in POST %s", path)
            status, error_code = 500, "ServerException"
            body = error_body(error_code, f"Internal error ({type(exc).__name__})")
        return _status_line(status), _headers(body, error_code, "application/json"), body

    def _operation(self, environ: dict):
        if environ["REQUEST_METHOD"] != "POST" or environ.get("QUERY_STRING") or \
                "HTTP_X_AMZ_TARGET" in environ or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        raw = environ.get("REQUEST_URI") or environ.get("RAW_URI") or ""
        length = environ.get("CONTENT_LENGTH") or ""
        if not raw.startswith("/v1/") or "%" in raw or "?" in raw or "#" in raw or \
                not length.isascii() or not length.isdigit() or int(length) > MAX_BODY:
            return None
        return self.router.literal("POST", raw)


def health_report(ctx: Context, engine_status: Callable[[], tuple[bool, str]],
                  cluster: Callable[[], dict | None] = lambda: None) -> dict:
    """Version, state and the active executor; `docker` says whether the Docker Engine answers when it is
    the executor (kept under that name for clients that read it). An executor of several machines (swarm)
    adds its nodes and their free capacity under `executor.nodes`."""
    reachable, detail = engine_status()
    report = {"service": "batchemu", "version": __version__, "state": ctx.config.state,
              "region": ctx.config.region, "accountId": ctx.config.account_id,
              "executor": {"name": ctx.config.executor, "reachable": reachable, "detail": detail}}
    nodes = cluster() if reachable else None
    if nodes is not None:
        report["executor"].update(nodes)
    if ctx.config.executor == "docker":
        report["docker"] = {"reachable": reachable, "detail": detail}
    return report
