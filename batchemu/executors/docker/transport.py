"""Plain engine calls straight over the engine's unix socket, under the docker SDK's own methods.

The SDK sends every call through requests and urllib3, which cost about 1 ms of CPU each: the four to five
calls a job makes (create, start, a read of its output, remove) were a third of the server's CPU while
short jobs ran. For a local socket, LeanRequests takes the SDK client's calls that send a whole body and
read a whole answer (every call batchemu makes, but the event stream and image pulls) and makes them with
http.client on a connection of their own, which is some five times cheaper. It answers with a
requests.Response, so the SDK reads results and turns error answers into its exceptions (NotFound,
ImageNotFound, APIError with its status code) exactly as before; an engine that cannot be reached raises
requests' ConnectionError or Timeout, as the SDK would.

A connection per call, never kept: an engine that is shutting down refuses new connections, which is how
batchemu tells that it went away (a kept one would carry calls to it and get error answers instead).
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from urllib.parse import urlencode

import docker
import requests
from requests.structures import CaseInsensitiveDict

# Leaves of a call the SDK makes through requests: anything else goes through requests as before.
_PLAIN_KEYWORDS = frozenset({"params", "data", "headers", "timeout", "stream", "json", "allow_redirects"})


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class LeanRequests:
    """Stands in for an APIClient's `request` method (requests.Session.request) on a unix-socket engine."""

    def __init__(self, api: docker.APIClient, socket_path: str) -> None:
        self._fallback = api.request
        self._base = api.base_url
        self._path = socket_path
        self._user_agent = api.headers.get("User-Agent", "batchemu")

    def __call__(self, method: str, url: str, **kwargs) -> requests.Response:
        data = kwargs.get("data")
        if (kwargs.get("stream") or kwargs.get("json") is not None or not url.startswith(self._base)
                or not _PLAIN_KEYWORDS.issuperset(kwargs) or not (data is None or isinstance(data, (str, bytes)))):
            return self._fallback(method, url, **kwargs)
        target = url[len(self._base):] or "/"
        query = _query(kwargs.get("params"))
        if query:
            target += ("&" if "?" in target else "?") + query
        body = data.encode("utf-8") if isinstance(data, str) else data
        headers = {"User-Agent": self._user_agent, "Accept": "*/*", **(kwargs.get("headers") or {})}
        timeout = kwargs.get("timeout")
        if isinstance(timeout, tuple):
            timeout = max((t for t in timeout if t is not None), default=None)
        connection = _UnixConnection(self._path, timeout)
        try:
            connection.request(method, target, body=body, headers=headers)
            answer = connection.getresponse()
            content = answer.read()
        except TimeoutError as exc:
            raise requests.exceptions.ReadTimeout(f"engine call {method} {target}: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise requests.exceptions.ConnectionError(f"engine call {method} {target}: {exc}") from exc
        finally:
            connection.close()
        response = requests.Response()
        response.status_code = answer.status
        response.reason = answer.reason
        response.headers = CaseInsensitiveDict(answer.getheaders())
        response._content = content
        response.encoding = "utf-8"  # the engine answers JSON or plain text (no guessing from the bytes)
        response.url = url
        return response


def _query(params) -> str:
    """The query string requests would make of `params`: None values left out, a list repeats its key."""
    if not params:
        return ""
    if isinstance(params, (str, bytes)):
        return params.decode() if isinstance(params, bytes) else params
    pairs = []
    for key, value in (params.items() if isinstance(params, dict) else params):
        for one in value if isinstance(value, (list, tuple)) else [value]:
            if one is not None:
                pairs.append((key, one))
    return urlencode(pairs)


def install(api: docker.APIClient, socket_path: str) -> None:
    """Route the SDK client's plain calls through LeanRequests."""
    api.request = LeanRequests(api, socket_path)


def demultiplex(body: bytes) -> Iterator[bytes]:
    """The messages of a multiplexed stdout/stderr body: 8-byte headers (stream, 0, 0, 0, big-endian size)."""
    at = 0
    while at + 8 <= len(body):
        size = int.from_bytes(body[at + 4:at + 8], "big")
        yield body[at + 8:at + 8 + size]
        at += 8 + size
