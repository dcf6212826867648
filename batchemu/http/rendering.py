"""AWS JSON errors for the requests cheroot answers itself, before the Flask app sees them.

cheroot refuses a malformed request line, a lower-case method, a bad Content-Length or header line, an HTTP
version other than 1.x or an unknown Transfer-Encoding with a text/plain `simple_response`. This connection
class renders those answers as rest-json errors too (`__type`, `message`, `x-amzn-ErrorType`), and answers a
client's mistakes with 4xx: only genuine server trouble (500, 503) stays 5xx. It also never reads an unread
body larger than the app would have accepted just to keep the connection alive.
"""

from __future__ import annotations

from cheroot import errors, server

from batchemu import ids
from batchemu.http.app import MAX_BODY
from batchemu.protocol.serializer import error_body

# status cheroot sends -> (status we send, __type). 501 (Transfer-Encoding) and 505 (HTTP version) describe
# a request we cannot read, so they become a 400 like any other malformed request.
_ANSWERS = {
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
    """cheroot's request, with its own error answers in AWS's JSON error form."""

    def send_headers(self) -> None:
        # To keep the connection, cheroot reads whatever body the app left unread before answering. One larger
        # than the app ever reads is not worth it (and a Content-Length over 2**63 made that read raise, so the
        # client got no answer at all): close the connection instead.
        if getattr(self.rfile, "remaining", 0) > MAX_BODY:
            self.close_connection = True
        super().send_headers()

    def simple_response(self, status, msg="") -> None:
        text = str(status)
        code = int(text[:3])
        reason = text[4:] or "Error"
        status_code, error_type = _ANSWERS.get(code, (500, "ServerException"))
        message = msg.decode("latin-1") if isinstance(msg, bytes) else str(msg)
        message = message or (f"Unsupported HTTP request: {reason}" if code in (501, 505) else reason)
        body = error_body(error_type, message)
        head = [f"{self.server.protocol} {status_code} {_REASONS.get(status_code, reason)}",
                "Content-Type: application/json", f"Content-Length: {len(body)}",
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
    RequestHandlerClass = JsonErrorRequest
