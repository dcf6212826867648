"""Every wait of tests/ and conformance/: for a state or an event, never for a fixed time, with a deadline that
holds on a loaded 2-core machine, and on a timeout a failure that says what was awaited and what was seen.

A wait's `timeout` is what the awaited thing needs on an idle machine. The deadline is `LOAD_FACTOR` times
that: a 2-core machine running the suite, its containers and an engine's clean-up runs them about three
times slower than an idle one, and a wait that returns as soon as its state holds costs nothing for the
extra time. `BATCHEMU_TEST_LOAD_FACTOR` changes the factor (1 to see how near a wait runs to its limit).
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
LOAD_FACTOR = float(os.environ.get("BATCHEMU_TEST_LOAD_FACTOR", "3"))
_SHOWN = 600  # characters of an awaited value in a failure message


def deadline_for(timeout: float) -> float:
    """The monotonic time at which a wait of `timeout` idle seconds gives up."""
    return time.monotonic() + timeout * LOAD_FACTOR


def wait_for(observe: Callable[[], T], done: Callable[[T], Any] = bool, what: str | None = None,
             timeout: float = 30.0, interval: float = 0.05, on_timeout: Callable[[], Any] | None = None,
             show: Callable[[T], str] = repr) -> T:
    """Call `observe` until `done(value)` holds and return that value. On a timeout, fail the test naming
    `what` was awaited (the source of `observe` when not given), the values seen (distinct, in order, the
    last ones, as `show` writes them) and, when given, what `on_timeout()` returns (a log, the engine's
    state)."""
    deadline = deadline_for(timeout)
    seen: list[str] = []
    while True:
        value = observe()
        if done(value):
            return value
        shown = show(value)[:_SHOWN]
        if not seen or seen[-1] != shown:
            seen.append(shown)
        if time.monotonic() > deadline:
            message = (f"{what or _source(observe)} not reached within {timeout * LOAD_FACTOR:.0f} s "
                       f"({timeout:g} s idle x {LOAD_FACTOR:g}); seen: {' -> '.join(seen[-8:])}")
            if on_timeout is not None:
                message += f"; {_safely(on_timeout)}"
            pytest.fail(message)
        time.sleep(interval)


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, *,
               what: str | None = None, on_timeout: Callable[[], Any] | None = None) -> T:
    """Poll `predicate` until it returns something truthy, and return that."""
    return wait_for(predicate, bool, what or _source(predicate), timeout, interval, on_timeout)


def _source(function: Callable) -> str:
    try:
        text = " ".join(inspect.getsource(function).split())
    except (OSError, TypeError):
        return getattr(function, "__qualname__", repr(function))
    return text[:300]


def _safely(call: Callable[[], Any]) -> str:
    try:
        return str(call())[-3000:]
    except Exception as exc:  # noqa: BLE001 - the failure message must still be given
        return f"(could not tell: {exc!r})"
