"""The AWS Batch provider: one module per resource family, each a table of operation handlers."""

from __future__ import annotations

from collections.abc import Callable

from batchemu.context import Context
from batchemu.protocol.serializer import Serialized
from batchemu.service import (
    compute_environments,
    consumable_resources,
    job_definitions,
    job_listing,
    job_queues,
    jobs,
    quota_shares,
    scheduling_policies,
    service_environments,
    service_jobs,
    tags,
)

# A handler's result is serialized against its operation's output shape, unless it is already (Serialized).
Handler = Callable[[Context, dict], dict | Serialized]

HANDLERS: dict[str, Handler] = {
    **compute_environments.OPERATIONS,
    **job_queues.OPERATIONS,
    **job_definitions.OPERATIONS,
    **scheduling_policies.OPERATIONS,
    **consumable_resources.OPERATIONS,
    **service_environments.OPERATIONS,
    **quota_shares.OPERATIONS,
    **service_jobs.OPERATIONS,
    **tags.OPERATIONS,
    **jobs.OPERATIONS,
    **job_listing.OPERATIONS,
}
