"""The one JSON error renderer: every error answer of the server, whoever finds the error, in AWS's form.

An answer is a small WSGI application (`Answer`). Errors carry `{"__type", "message"}` as the body and the
same `__type` in the `x-amzn-ErrorType` header, whether an operation refused the request (ServiceError), the
pipeline found no route or too large a body (werkzeug's HTTPException), something failed unexpectedly, or
cheroot refused bytes it could not read as HTTP (JsonErrorConnection): a client's mistakes are 4xx, only
genuine server trouble is 5xx.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable

from cheroot import errors, server
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from batchemu import ids
from batchemu.errors import ServiceError
from batchemu.protocol.serializer import error_body

log = logging.getLogger("batchemu")

JSON = "application/json"
MAX_BODY = 8 * 1024 * 1024  # the largest request body any route reads

# werkzeug's HTTP errors by status -> __type; any other 4xx is a ClientException, 5xx a ServerException.
_HTTP_ERROR_TYPES = {404: "UnknownOperationException", 405: "MethodNotAllowedException",
                     413: "RequestEntityTooLargeException"}


class Answer:
    """A whole answer (status, body, content type, error type) as a WSGI application."""

    __slots__ = ("body", "content_type", "error_type", "status")

    def __init__(self, status: int, body: bytes, content_type: str = JSON, error_type: str | None = None) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.error_type = error_type

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        headers = [("Content-Type", self.content_type), ("Content-Length", str(len(self.body))),
                   ("x-amzn-RequestId", ids.uuid4_str())]
        if self.error_type:
            headers.append(("x-amzn-ErrorType", self.error_type))
        # as werkzeug writes a status line
        start_response(f"{self.status} {HTTP_STATUS_CODES.get(self.status, 'Unknown').upper()}", headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [self.body]


def error(code: str, message: str, status: int, content_type: str = JSON) -> Answer:
    """The answer for an error named `code` (its `__type`)."""
    return Answer(status, error_body(code, message), content_type, code)


def service_error(exc: ServiceError, content_type: str = JSON) -> Answer:
    return error(exc.code, exc.message, exc.status, content_type)


def http_error(exc: HTTPException) -> Answer:
    status = exc.code or 500
    code = _HTTP_ERROR_TYPES.get(status, "ClientException" if status < 500 else "ServerException")
    return error(code, exc.description or exc.name, status)


def unexpected(exc: Exception, method: str, path: str) -> Answer:
    """The answer for an exception nothing else caught; the traceback goes to the log."""
    log.error("unhandled error in %s %s", method, path, exc_info=exc)
    return error("ServerException", f"Internal error ({type(exc).__name__})", 500)


# status cheroot sends -> (status we send, __type). 501 (Transfer-Encoding) and 505 (HTTP version) describe
# a request we cannot read, so they become a 400 like any other malformed request.
_CHEROOT_ANSWERS = {
    400: (400, "ClientException"),
    405: (405, "MethodNotAllowedException"),
    408: (408, "RequestTimeoutException"),
    413: (413, "RequestEntityTooLargeException"),
    414: (414, "RequestURITooLongException"),
    501: (400, "ClientException"),
    505: (400, "ClientException"),
    503: (503, "ServiceUnavailableException"),
}
_REASONS = {400: "Bad Request", 405: "Method Not Allowed", 408: "Request Timeout",
            413: "Request Entity Too Large", 414: "Request-URI Too Long", 500: "Internal Server Error",
            503: "Service Unavailable"}


class JsonErrorRequest(server.HTTPRequest):
    """cheroot's request, whose own error answers (a malformed request line, a lower-case method, a bad
    Content-Length or header line, an HTTP version other than 1.x, an unknown Transfer-Encoding) are
    rendered here rather than as cheroot's text/plain `simple_response`."""

    def send_headers(self) -> None:
        # To keep the connection, cheroot reads whatever body the app left unread before answering. One larger
        # than the app ever reads is not worth it (and a Content-Length over 2**63 made that read raise, so the
        # client got no answer at all): close the connection instead.
        if getattr(self.rfile, "remaining", 0) > MAX_BODY:
            self.close_connection = True
            self.conn.body_left_unread = True
        super().send_headers()

    def simple_response(self, status, msg="") -> None:
        text = str(status)
        code = int(text[:3])
        reason = text[4:] or "Error"
        status_code, error_type = _CHEROOT_ANSWERS.get(code, (500, "ServerException"))
        message = msg.decode("latin-1") if isinstance(msg, bytes) else str(msg)
        message = message or (f"Unsupported HTTP request: {reason}" if code in (501, 505) else reason)
        body = error_body(error_type, message)
        head = [f"{self.server.protocol} {status_code} {_REASONS.get(status_code, reason)}",
                f"Content-Type: {JSON}", f"Content-Length: {len(body)}",
                f"x-amzn-ErrorType: {error_type}", f"x-amzn-RequestId: {ids.uuid4()}"]
        if status_code in (400, 413, 414):
            # cheroot could not read this request to its end: the next bytes on the connection are not a request.
            self.close_connection = True
            head.append("Connection: close")
        try:
            self.conn.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        except OSError as exc:
            if exc.args and exc.args[0] not in errors.socket_errors_to_ignore:
                raise


class JsonErrorConnection(server.HTTPConnection):
    """cheroot's connection with JsonErrorRequest, closed gracefully after a body it did not read.

    A client like requests sends its whole body before it reads an answer; were its bytes no longer read (or
    the socket closed with unread bytes, which resets the connection and can drop the answer on the client's
    side), it would block or lose the 413. So the rest it sends is read and dropped until it closes its side,
    for at most LINGER_SECONDS and LINGER_BYTES."""

    RequestHandlerClass = JsonErrorRequest
    body_left_unread = False

    def close(self) -> None:
        if self.body_left_unread:
            self.body_left_unread = False
            _drain(self.socket)
        super().close()


LINGER_SECONDS = 10.0
LINGER_BYTES = 64 * 1024 * 1024


def _drain(sock: socket.socket) -> None:
    """End our side of `sock`, then read and drop what the client still sends (see JsonErrorConnection)."""
    deadline, dropped = time.monotonic() + LINGER_SECONDS, 0
    try:
        sock.shutdown(socket.SHUT_WR)
        while dropped <= LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                return
            dropped += len(data)
    except OSError:
        pass  # the client went away or idled out
