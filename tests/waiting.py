"""Every wait of tests/ and conformance/: for a state or an event, never for a fixed time, with a deadline that
holds on a loaded 2-core machine, and on a timeout a failure that says what was awaited and what was seen.

A wait's `timeout` is what the awaited thing needs on an idle machine. The deadline is `LOAD_FACTOR` times
that: a 2-core machine running the suite, its containers and an engine's clean-up runs them about three
times slower than an idle one, and a wait that returns as soon as its state holds costs nothing for the
extra time. `BATCHEMU_TEST_LOAD_FACTOR` changes the factor (1 to see how near a wait runs to its limit).

That something does not happen is awaited the same way: for a number of the scheduler's passes
(`wait_for_passes`), each of which would have done it, not for a fixed time that a loaded machine may fill
with no pass at all (a time window only where an endpoint offers no counter).
"""

from __future__ import annotations

import inspect
import os
import threading
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
             show: Callable[[T], str] = repr, wake: threading.Event | None = None) -> T:
    """Call `observe` until `done(value)` holds and return that value. On a timeout, fail the test naming
    `what` was awaited (the source of `observe` when not given), the values seen (distinct, in order, the
    last ones, as `show` writes them) and, when given, what `on_timeout()` returns (a log, the engine's
    state). Between two calls it sleeps `interval`, or with `wake` (an event set by news, such as an
    executor's listener) until that event is set, at most `interval`."""
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
        if wake is None:
            time.sleep(interval)
        else:
            wake.wait(interval)
            wake.clear()


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, *,
               what: str | None = None, on_timeout: Callable[[], Any] | None = None) -> T:
    """Poll `predicate` until it returns something truthy, and return that."""
    return wait_for(predicate, bool, what or _source(predicate), timeout, interval, on_timeout)


def wait_for_passes(read_passes: Callable[[], int | None], passes: int = 3, *, window: float = 3.0,
                    timeout: float = 10.0, interval: float = 0.05) -> None:
    """Return once `passes` more reconcile passes of the scheduler have completed after this call, as
    `read_passes()` counts them: the wait before asserting that something did not happen (a job held stays
    RUNNABLE). The first pass counted may have begun before this call and read the store as it was then, so
    `passes` must be 2 or more for one whole pass to have seen everything done before the call.

    `read_passes` answers None where no counter is to be had (an endpoint that is not batchemu: real AWS,
    moto): the wait is then a time window of `window` seconds, the only observation such an endpoint
    allows, which says less than counted passes on a loaded machine."""
    if passes < 2:
        raise ValueError(f"wait for at least 2 scheduler passes, not {passes}: the first may predate the call")
    start = read_passes()
    if start is None:
        time.sleep(window)
        return
    wait_for(read_passes, lambda count: count is not None and count >= start + passes,
             f"{passes} scheduler passes after pass {start}", timeout, interval)


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
