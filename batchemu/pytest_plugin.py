"""pytest fixtures for projects that test code driving AWS Batch: installed through the pytest11 entry point.

    def test_my_pipeline(batch_client):
        batch_client.create_compute_environment(...)

`batchemu_server` is a fresh emulator on a free loopback port with throw-away state; `batch_client` and
`logs_client` are boto3 clients pointed at it. Every container the server started is removed at teardown.
`batchemu_events` collects the Batch events (EventBridge's shapes) the server records during the test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from batchemu.config import Config


def _client(service: str, server) -> object:
    import boto3
    from botocore.config import Config as BotoConfig
    return boto3.client(service, endpoint_url=server.url, region_name=server.config.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=BotoConfig(retries={"max_attempts": 1}))


@pytest.fixture
def batchemu_config() -> Config:
    """Override to change the settings of `batchemu_server` (e.g. state_dwell, or executor="simulate" to run
    jobs without Docker)."""
    return Config(host="127.0.0.1", port=0, state=":memory:", tick=0.5)


@pytest.fixture
def batchemu_server(batchemu_config: Config) -> Iterator[object]:
    """A running batchemu (`.url`, `.config`, `.store`) on a free loopback port, stopped afterwards."""
    from batchemu.http.server import Server
    batchemu_config.instance_label = batchemu_config.instance_label or uuid.uuid4().hex
    server = Server(batchemu_config).start()
    try:
        yield server
    finally:
        server.stop(remove_containers=True)


@pytest.fixture
def batchemu_endpoint(batchemu_server) -> str:
    """The endpoint URL of `batchemu_server`, for `endpoint_url=` or AWS_ENDPOINT_URL_BATCH."""
    return batchemu_server.url


@pytest.fixture
def batch_client(batchemu_server):
    """A boto3 `batch` client talking to `batchemu_server`."""
    return _client("batch", batchemu_server)


@pytest.fixture
def logs_client(batchemu_server):
    """A boto3 `logs` client talking to `batchemu_server` (job output of its containers)."""
    return _client("logs", batchemu_server)


class CollectedEvents(Sequence):
    """The events a server recorded since this object was made, oldest first, as EventBridge delivers them
    (`event["detail-type"]`, `event["detail"]["status"]`, ...): read again whenever it is looked at."""

    def __init__(self, server: Any) -> None:
        self._server = server
        with server.store.read() as tx:
            self._after = tx.events.last_seq()
        self._events: list[dict] = []

    def _read(self) -> list[dict]:
        from batchemu.model import job_events
        with self._server.store.read() as tx:
            while True:
                page = job_events.read(tx, self._server.config, self._after, 500)
                self._events.extend(event for _, event in page)
                if len(page) < 500:
                    break
                self._after = page[-1][0]
            if page:
                self._after = page[-1][0]
        return self._events

    def __len__(self) -> int:
        return len(self._read())

    def __getitem__(self, index: Any) -> Any:
        return self._read()[index]

    def __repr__(self) -> str:
        return f"CollectedEvents({[(e['detail-type'], e['detail'].get('jobId'), e['detail'].get('status')) for e in self._read()]})"

    def of_job(self, job_id: str) -> list[dict]:
        """The events of one job."""
        return [event for event in self._read() if event["detail"].get("jobId") == job_id]

    def statuses(self, job_id: str) -> list[str]:
        """The statuses a job changed to, in order (its "Batch Job State Change" events)."""
        return [event["detail"]["status"] for event in self.of_job(job_id)
                if event["detail-type"].endswith("State Change")]

    def wait_for(self, condition: Callable[[CollectedEvents], Any], timeout: float = 30.0) -> CollectedEvents:
        """Wait until `condition(self)` holds (checked as events are recorded); AssertionError naming the
        events seen when `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        recorded = self._server.store.events_recorded
        while not condition(self):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"events awaited for {timeout:g} s; seen: {self!r}")
            with recorded:
                recorded.wait(min(left, 0.5))
        return self

    def wait_for_status(self, job_id: str, status: str, timeout: float = 30.0) -> dict:
        """Wait for the job's change to `status`; that event."""
        self.wait_for(lambda events: status in events.statuses(job_id), timeout)
        return next(event for event in self.of_job(job_id) if event["detail"]["status"] == status
                    and event["detail-type"].endswith("State Change"))


@pytest.fixture
def batchemu_events(batchemu_server) -> CollectedEvents:
    """The Batch events `batchemu_server` records during the test (a list-like `CollectedEvents`, read when
    looked at): `batchemu_events.statuses(job_id)`, `batchemu_events.wait_for_status(job_id, "FAILED")`."""
    return CollectedEvents(batchemu_server)
