"""The scheduler's count of completed passes, on which tests wait before asserting that something did not
happen (tests/waiting.py's wait_for_passes): it grows by one with each pass that completes, in the process and
in GET /_batchemu/health. No test here needs Docker."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from batchemu.config import Config
from batchemu.http.server import Server
from tests.waiting import wait_for_passes, wait_until


def simulate_config() -> Config:
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.05, executor="simulate")


@pytest.fixture
def batchemu_config() -> Config:
    return simulate_config()


def health_passes(server) -> int:
    with urllib.request.urlopen(server.url + "/_batchemu/health", timeout=30) as response:
        return json.loads(response.read())["scheduler"]["passes"]


def test_passes_count_the_passes_that_completed():
    server = Server(simulate_config())
    scheduler = server.scheduler
    real_reconcile = scheduler.reconcile
    calls = []

    def reconcile() -> None:
        calls.append(scheduler.passes)
        if len(calls) == 2:
            raise RuntimeError("a pass that fails (test)")
        real_reconcile()
    scheduler.reconcile = reconcile
    assert scheduler.passes == 0
    server.start()
    try:
        wait_until(lambda: len(calls) >= 5, 10, what="five scheduler passes")
    finally:
        server.stop()
    # Each pass began with the count of those completed before it; the failed one added nothing.
    assert calls[:4] == [0, 1, 1, 2]
    assert scheduler.passes == len(calls) - 1


def test_health_carries_the_count_and_it_grows(batchemu_server):
    first = health_passes(batchemu_server)
    assert first <= batchemu_server.scheduler.passes
    wait_until(lambda: health_passes(batchemu_server) >= first + 2, 10, what="the count in health to grow by 2")


def test_wait_for_passes_returns_once_the_count_grew(batchemu_server):
    scheduler = batchemu_server.scheduler
    before = scheduler.passes
    wait_for_passes(lambda: scheduler.passes, 3)
    assert scheduler.passes >= before + 3


def test_wait_for_passes_fails_saying_what_it_saw_when_no_pass_completes():
    with pytest.raises(pytest.fail.Exception, match=r"3 scheduler passes after pass 7 not reached .* seen: 7"):
        wait_for_passes(lambda: 7, 3, timeout=0.1)


def test_wait_for_passes_without_a_counter_waits_out_the_window():
    began = time.monotonic()
    wait_for_passes(lambda: None, 3, window=0.2)
    assert time.monotonic() - began >= 0.2


def test_wait_for_passes_refuses_fewer_than_two():
    with pytest.raises(ValueError, match="at least 2"):
        wait_for_passes(lambda: 0, 1)
