"""A service's output as the manager gathers it from whichever node ran its task: the frames the log pump
(batchemu.executors.docker.logs) ships."""

from __future__ import annotations

from collections.abc import Iterator

import docker

from batchemu.executors.docker.logs import timestamped_frames

LOG_READ_SECONDS = 10.0        # longest read of one service's logs


def service_log_frames(client: docker.DockerClient, service_id: str, since: float | None,
                       tail: int | str) -> Iterator[tuple[int, bytes]]:
    """(timestamp ns, line) of the service's output; the manager gathers it from whichever node ran it.

    Read whole with a timeout, not streamed: the SDK's stream has no timeout, and the manager never ends
    the answer for a task on a node that went away."""
    api = client.api
    response = api._get(api._url("/services/{0}/logs", service_id), timeout=LOG_READ_SECONDS, params={
        "stdout": 1, "stderr": 1, "timestamps": 1, "follow": 0, "since": since or 0, "tail": tail})
    api._raise_for_status(response)
    yield from timestamped_frames(response.content)
