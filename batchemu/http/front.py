"""The listening socket of an unsigned server: plain operation requests answered on the connection's own
thread, everything else passed byte for byte to cheroot.

cheroot parses each request with pure-Python buffered I/O and hands every keep-alive connection between its
selector thread and a worker thread twice per request; for a SubmitJob that is about as much CPU as the
handler itself. Most API traffic is the plain case OperationFastPath (batchemu.http.app) already answers without
Flask: `POST /v1/<operation>` over HTTP/1.1 with a Content-Length and nothing unusual. This front reads such
requests itself (a strict subset of HTTP/1.1, checked with one regular expression per line) and writes the
answer OperationFastPath gives, with the headers cheroot adds (Date, Server). The first request on a
connection that is anything else (another method or path, a query, chunked, Expect, Connection, a malformed
or oversized head, a body cut short) and every byte after it go to cheroot on a loopback port, which answers
as it always has: its error answers, keep-alive and close rules stay cheroot's.
"""

from __future__ import annotations

import logging
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from email.utils import formatdate

log = logging.getLogger("batchemu")

MAX_HEAD = 16 * 1024          # a longer head goes to cheroot, which has its own limits and answers
IDLE_SECONDS = 10.0           # an idle keep-alive connection is closed after this, as cheroot's timeout
RECV = 65536
POLL_MS = 200                 # how often a relay that waits for the client looks whether cheroot closed
LINGER_SECONDS = 10.0         # after cheroot closed, how long the rest of a client's request is read and dropped
LINGER_BYTES = 64 * 1024 * 1024
_REQUEST_LINE = re.compile(rb"POST (/v1/[a-z]+) HTTP/1\.1")
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?|)[ \t]*")
# Headers that change how the request is read or answered: cheroot handles those requests.
_PASSED_ON = {b"transfer-encoding", b"expect", b"connection", b"upgrade", b"x-amz-target", b"te", b"trailer"}

# (path, body) -> (status line, headers, body), or None for a path that is no literal operation route.
Answer = Callable[[str, bytes], "tuple[str, list[tuple[str, str]], bytes] | None"]


def plain_request(head: bytes, max_body: int) -> tuple[str, int] | None:
    """(path, Content-Length) of a request head (without its blank line) that the front answers itself, or
    None when cheroot should read it."""
    lines = head.split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        return None
    length = None
    for line in lines[1:]:
        header = _HEADER.fullmatch(line)
        if header is None:
            return None
        name = header.group(1).lower()
        if name in _PASSED_ON:
            return None
        if name == b"content-length":
            value = header.group(2)
            if length is not None or not value.isdigit() or len(value) > 10 or int(value) > max_body:
                return None
            length = int(value)
    if length is None:
        return None
    return match.group(1).decode("ascii"), length


class Front:
    """Accepts connections on (host, port) and serves each on a thread of its own; see the module text."""

    def __init__(self, host: str, port: int, backlog: int, backend: tuple[str, int], answer: Answer,
                 max_body: int, server_name: str) -> None:
        self.backend = backend
        self.answer = answer
        self.max_body = max_body
        self.server_name = server_name
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._date = (0, "")

    def serve(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            with self._lock:
                self._open.add(client)
            threading.Thread(target=self._connection, args=(client,), name="batchemu-front", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self._lock:
            for client in list(self._open):
                _shutdown(client)

    # -- one connection ----------------------------------------------------------------------------------
    def _connection(self, client: socket.socket) -> None:
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.settimeout(IDLE_SECONDS)
            self._serve_plain(client)
        except OSError:
            pass  # the client went away or idled out
        except Exception:
            log.exception("front: connection failed")
        finally:
            with self._lock:
                self._open.discard(client)
            client.close()

    def _serve_plain(self, client: socket.socket) -> None:
        buffer = b""
        while not self._stopping.is_set():
            end = buffer.find(b"\r\n\r\n")
            while end < 0:
                if len(buffer) > MAX_HEAD:
                    return self._pass_on(client, buffer, ended=False)
                data = client.recv(RECV)
                if not data:
                    return self._pass_on(client, buffer, ended=True) if buffer else None
                buffer += data
                end = buffer.find(b"\r\n\r\n")
            plain = plain_request(buffer[:end], self.max_body)
            if plain is None:
                return self._pass_on(client, buffer, ended=False)
            path, length = plain
            total = end + 4 + length
            while len(buffer) < total:
                data = client.recv(RECV)
                if not data:  # a body cut short: cheroot names it
                    return self._pass_on(client, buffer, ended=True)
                buffer += data
            answer = self.answer(path, buffer[end + 4:total])
            if answer is None:
                return self._pass_on(client, buffer, ended=False)
            status, headers, body = answer
            head = "".join(f"{name}: {value}\r\n" for name, value in headers)
            client.sendall(f"HTTP/1.1 {status}\r\n{head}Date: {self._http_date()}\r\nServer: {self.server_name}"
                           f"\r\n\r\n".encode("latin-1") + body)
            buffer = buffer[total:]

    def _http_date(self) -> str:
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True))
        return self._date[1]

    def _pass_on(self, client: socket.socket, received: bytes, *, ended: bool) -> None:
        """Relay the rest of the connection to cheroot, starting with the bytes `received` of its current
        request; `ended` when the client has closed its side already. Ends when cheroot closes: see
        _requests() for what the client may still be sending then."""
        client.settimeout(None)  # cheroot's own timeouts apply from here
        with socket.create_connection(self.backend) as backend:
            backend.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            answered = threading.Event()
            replies = threading.Thread(target=_answers, args=(backend, client, answered),
                                       name="batchemu-front-relay", daemon=True)
            replies.start()
            try:
                backend.sendall(received)
            except OSError:
                pass  # cheroot closed already: its answer (if any) still reaches the client
            if ended:
                _shutdown(backend, socket.SHUT_WR)
            else:
                _requests(client, backend, answered)
            replies.join()


def _answers(backend: socket.socket, client: socket.socket, answered: threading.Event) -> None:
    """Copy cheroot's bytes to the client until cheroot ends its side, then end the client's read side too:
    after its last answer it sees the connection close."""
    try:
        while data := backend.recv(RECV):
            client.sendall(data)
    except OSError:
        pass
    answered.set()
    _shutdown(client, socket.SHUT_WR)


def _requests(client: socket.socket, backend: socket.socket, answered: threading.Event) -> None:
    """Copy the client's bytes to cheroot until the client ends its side (cheroot then answers and closes).

    cheroot may close first: it answers a body over the limit with 413 and closes without reading it. A
    client like requests sends its whole body before it reads an answer; were its bytes no longer read (or
    the socket closed with unread bytes, which resets the connection and can drop the answer on the
    client's side), it would block or lose the 413. So once cheroot has closed, the rest the client sends
    is read and dropped until it closes its side, for at most LINGER_SECONDS and LINGER_BYTES."""
    poller = select.poll()
    poller.register(client, select.POLLIN)
    to_cheroot, linger_until, dropped = True, None, 0
    while True:
        if answered.is_set() and linger_until is None:
            linger_until = time.monotonic() + LINGER_SECONDS
        if linger_until is not None and (time.monotonic() >= linger_until or dropped > LINGER_BYTES):
            break
        if not poller.poll(POLL_MS):
            continue
        try:
            data = client.recv(RECV)
        except OSError:
            break
        if not data:
            break
        if to_cheroot and not answered.is_set():
            try:
                backend.sendall(data)
                continue
            except OSError:
                to_cheroot = False  # cheroot closed: its answer is on the way; the rest is dropped
        dropped += len(data)
    _shutdown(backend, socket.SHUT_WR)


def _shutdown(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass
