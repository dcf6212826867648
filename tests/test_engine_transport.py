"""The engine calls batchemu makes over a local socket without requests (batchemu.executors.docker.transport):
what the SDK makes of their answers must not change, errors included. Against a small HTTP server on a unix
socket, so that every answer the engine might give can be made."""

from __future__ import annotations

import json
import os
import socketserver
import tempfile
import threading
from http.server import BaseHTTPRequestHandler

import docker
import pytest
import requests
from docker.errors import APIError, ImageNotFound, NotFound

from batchemu.executors.docker import transport


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def fake_engine():
    """(socket path, list of (method, path) seen, answers by path: (status, JSON body))."""
    seen: list[tuple[str, str, bytes]] = []
    answers: dict[str, tuple[int, dict | list]] = {}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path, body))
            status, doc = answers.get(self.path.split("?")[0].split("/", 2)[-1], (200, {}))
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args) -> None:
            pass

    path = os.path.join(tempfile.mkdtemp(prefix="be-fake-engine-"), "docker.sock")
    server = _UnixHTTPServer(path, Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path, seen, answers
    server.shutdown()
    server.server_close()
    os.unlink(path)


def _client(path: str) -> docker.APIClient:
    api = docker.APIClient(base_url=f"unix://{path}", version="1.41", timeout=5)
    transport.install(api, path)
    return api


def test_answers_and_the_query_reach_the_sdk_as_through_requests(fake_engine):
    path, seen, answers = fake_engine
    answers["containers/abc/json"] = (200, {"Id": "abc", "State": {"Status": "exited"}})
    api = _client(path)
    assert api.inspect_container("abc") == {"Id": "abc", "State": {"Status": "exited"}}
    api.remove_container("abc", v=True, force=True)
    api.containers(all=True, filters={"label": ["a=1", "b=2"]})
    methods_and_paths = [(method, p) for method, p, _ in seen]
    assert methods_and_paths[0] == ("GET", "/v1.41/containers/abc/json")
    assert methods_and_paths[1] == ("DELETE", "/v1.41/containers/abc?v=True&link=False&force=True")
    assert methods_and_paths[2][0] == "GET" and methods_and_paths[2][1].startswith("/v1.41/containers/json?")
    assert "filters=%7B%22label%22%3A+%5B%22a%3D1%22%2C+%22b%3D2%22%5D%7D" in methods_and_paths[2][1]


def test_a_created_container_sends_its_config_as_json(fake_engine):
    path, seen, answers = fake_engine
    answers["containers/create"] = (201, {"Id": "new", "Warnings": []})
    api = _client(path)
    assert api.create_container("img", ["true"], name="n1", labels={"k": "v"})["Id"] == "new"
    method, target, body = seen[0]
    assert (method, target) == ("POST", "/v1.41/containers/create?name=n1")
    config = json.loads(body)
    assert (config["Image"], config["Cmd"], config["Labels"]) == ("img", ["true"], {"k": "v"})


def test_error_answers_become_the_sdks_exceptions_with_the_engines_words(fake_engine):
    path, _, answers = fake_engine
    answers["containers/gone/json"] = (404, {"message": "No such container: gone"})
    answers["containers/create"] = (404, {"message": "No such image: missing:latest"})
    answers["containers/busy/start"] = (409, {"message": "container is busy"})
    api = _client(path)
    with pytest.raises(NotFound) as gone:
        api.inspect_container("gone")
    assert (gone.value.status_code, gone.value.explanation) == (404, "No such container: gone")
    with pytest.raises(ImageNotFound):
        api.create_container("missing", ["true"])
    with pytest.raises(APIError) as busy:
        api.start("busy")
    assert (busy.value.status_code, busy.value.explanation) == (409, "container is busy")


def test_an_engine_that_is_not_there_is_unreachable_as_through_requests(tmp_path):
    api = _client(str(tmp_path / "no.sock"))
    with pytest.raises(requests.exceptions.ConnectionError):
        api.inspect_container("abc")


def test_streams_still_go_through_requests(fake_engine):
    path, seen, _ = fake_engine
    api = _client(path)
    calls = []
    fallback = api.request._fallback

    def recording(method, url, **kwargs):
        calls.append((method, kwargs.get("stream")))
        return fallback(method, url, **kwargs)
    api.request._fallback = recording
    api._get(api._url("/events"), stream=True).close()
    api.inspect_container("abc")
    assert calls == [("GET", True)]
    assert [p for _, p, _ in seen] == ["/v1.41/events", "/v1.41/containers/abc/json"]


def test_multiplexed_output_is_split_into_its_messages():
    frame = lambda stream, data: bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data
    body = frame(1, b"2026-12-01T10:00:00.000000001Z out\n") + frame(2, b"2026-12-01T10:00:00.000000002Z err\n")
    assert list(transport.demultiplex(body)) == [b"2026-12-01T10:00:00.000000001Z out\n",
                                                 b"2026-12-01T10:00:00.000000002Z err\n"]
    assert list(transport.demultiplex(body[:5])) == []
