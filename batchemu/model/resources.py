"""Resource kinds and statuses: the store's `kind` of each Batch resource (also the resource type in its ARN)
and the statuses a compute environment, job queue, service environment or quota share walks through.

Handlers (service/) set CREATING, UPDATING or DELETING; the scheduler's status reconcilers move a resource on
to VALID, or out of the store.
"""

from __future__ import annotations

COMPUTE_ENVIRONMENT = "compute-environment"
JOB_QUEUE = "job-queue"
JOB_DEFINITION = "job-definition"
SCHEDULING_POLICY = "scheduling-policy"
CONSUMABLE_RESOURCE = "consumable-resource"
SERVICE_ENVIRONMENT = "service-environment"
QUOTA_SHARE = "quota-share"

CREATING, UPDATING, DELETING, DELETED, VALID, INVALID = (
    "CREATING", "UPDATING", "DELETING", "DELETED", "VALID", "INVALID")
# Statuses a resource passes through on its way to VALID (or out of the store, for DELETING).
TRANSIENT = (CREATING, UPDATING, DELETING)
GOING = (DELETING, DELETED)   # on its way out: not to be updated or ordered by a job queue
USABLE = (VALID, UPDATING)    # a compute environment, queue or service environment in these takes jobs
ENABLED, DISABLED = "ENABLED", "DISABLED"
