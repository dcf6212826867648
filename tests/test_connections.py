"""Connections as clients use them, on raw sockets: keep-alive, pipelined requests answered in order, bodies
sent in pieces, and a refused body over the limit answered before the connection closes. (Malformed HTTP and
the limits' JSON errors are tests/test_http_errors.py's.)"""

from __future__ import annotations

import json
import socket

from batchemu.http.app import MAX_BODY

HEAD = (b"POST /v1/describejobqueues HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAccept-Encoding: identity\r\n"
        b"Content-Type: application/json\r\nUser-Agent: Boto3/1.35 md/Botocore#1.35\r\n"
        b"X-Amz-Date: 20261130T140000Z\r\nContent-Length: 2")


def read_answer(sock: socket.socket, pending: bytes = b"") -> tuple[int, dict, bytes, bytes]:
    """(status, lower-cased headers, body, bytes after it) of the next answer on a keep-alive connection."""
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before an answer"
        pending += chunk
    head, _, rest = pending.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside an answer"
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:length], rest[length:]


def connect(server) -> socket.socket:
    return socket.create_connection((server.config.host, server.config.port), timeout=10)


def test_pipelined_requests_are_answered_in_order_with_date_and_server_headers(batchemu_server):
    request = HEAD + b"\r\n\r\n{}"
    describe = b'{"jobs": ["x"]}'
    missing = HEAD.replace(b"Content-Length: 2", b"Content-Length: %d" % len(describe)) + b"\r\n\r\n" + describe
    with connect(batchemu_server) as sock:
        sock.sendall(request + missing.replace(b"describejobqueues", b"describejobs") + request)
        status, headers, body, rest = read_answer(sock)
        assert (status, json.loads(body)) == (200, {"jobQueues": []})
        assert headers["server"] == "batchemu" and headers["date"].endswith("GMT") and headers["x-amzn-requestid"]
        status, _, body, rest = read_answer(sock, rest)
        assert (status, json.loads(body)) == (200, {"jobs": []})
        status, _, body, rest = read_answer(sock, rest)
        assert status == 200 and rest == b""


def test_a_body_sent_in_pieces_is_read_whole(batchemu_server):
    with connect(batchemu_server) as sock:
        for piece in (HEAD[:20], HEAD[20:] + b"\r\n", b"\r\n{", b"}"):
            sock.sendall(piece)
        status, _, body, _ = read_answer(sock)
        assert (status, json.loads(body)) == (200, {"jobQueues": []})


def test_requests_of_every_route_share_one_keep_alive_connection(batchemu_server):
    health = b"GET /_batchemu/health HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(batchemu_server) as sock:
        sock.sendall(HEAD + b"\r\n\r\n{}")
        assert read_answer(sock)[0] == 200
        # A request of batchemu's own endpoints, pipelined with an operation behind it: both are answered.
        sock.sendall(health + HEAD + b"\r\n\r\n{}")
        status, _, body, rest = read_answer(sock)
        assert status == 200 and json.loads(body)["service"] == "batchemu"
        status, _, body, _ = read_answer(sock, rest)
        assert (status, json.loads(body)) == (200, {"jobQueues": []})


def test_an_unknown_operation_path_is_a_json_404(batchemu_server):
    with connect(batchemu_server) as sock:
        sock.sendall(HEAD.replace(b"describejobqueues", b"nosuchoperation") + b"\r\n\r\n{}")
        status, headers, body, _ = read_answer(sock)
        assert status == 404 and json.loads(body)["__type"] == headers["x-amzn-errortype"] == \
            "UnknownOperationException"


def test_a_client_still_sending_a_refused_body_gets_the_413_and_the_close(batchemu_server):
    """A body over the limit is answered with 413 and the connection closed without reading the body: a
    client which sends its whole body before reading (as requests does) must not be left blocked, and gets
    the answer and then the end of the connection."""
    body = b"x" * (MAX_BODY + 4 * 1024 * 1024)
    head = HEAD.replace(b"describejobqueues", b"describejobs").replace(
        b"Content-Length: 2", f"Content-Length: {len(body)}".encode())
    with connect(batchemu_server) as sock:
        sock.sendall(head + b"\r\n\r\n")
        sock.sendall(body)  # blocks for good (the 10 s timeout raises) when nobody reads it any more
        status, headers, answer, rest = read_answer(sock)
        assert status == 413 and json.loads(answer)["__type"] == "RequestEntityTooLargeException"
        assert headers["connection"] == "close"
        while chunk := sock.recv(65536):
            rest += chunk
        assert rest == b""
