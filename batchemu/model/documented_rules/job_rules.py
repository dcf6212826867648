"""Documented rules of the job operations: SubmitJob's own members (array, dependencies, retries, timeout, tags,
share and priority), DescribeJobs' "only present when" fields, ListJobs' filters, the cancel and terminate
operations single and bulk, ListJobsByConsumableResource and GetJobQueueSnapshot."""

from __future__ import annotations

from batchemu.model.documented_rules.rule import Kind, Rule, Status, api, guide

SUBMIT, REGISTER = "SubmitJob", "RegisterJobDefinition"
CANCEL_OPERATIONS = ("CancelJob", "CancelJobs")
TERMINATE_OPERATIONS = ("TerminateJob", "TerminateJobs")
BULK = ("CancelJobs", "TerminateJobs")

_SUBMIT_JOB: tuple[Rule, ...] = (
    Rule("SubmitJob.jobName.pattern", (SUBMIT,), Kind.LIMIT,
         "jobName: up to 128 letters, numbers, hyphens and underscores, starting with a letter or number.",
         api("API_SubmitJob")),
    Rule("SubmitJob.jobDefinition.forms", (SUBMIT,), Kind.DEFAULT,
         "jobDefinition: name, name:revision, or an ARN with or without revision; without a revision, "
         '"the latest active revision is used".', api("API_SubmitJob")),
    Rule("SubmitJob.jobQueue.forms", (SUBMIT,), Kind.DEFAULT,
         "jobQueue: the name or the ARN of the queue.", api("API_SubmitJob")),
    Rule("SubmitJob.parameters.override", (SUBMIT,), Kind.DEFAULT,
         "parameters of SubmitJob override the job definition's parameter defaults.", api("API_SubmitJob")),
    Rule("ArrayProperties.size.range", (SUBMIT,), Kind.RANGE,
         "An array job's size is between 2 and 10,000.", api("API_ArrayProperties")),
    Rule("SubmitJob.arrayProperties.array-job", (SUBMIT,), Kind.BEHAVIOUR,
         '"If you specify array properties for a job, it becomes an array job": children <jobId>:<index> from 0.',
         guide("array_jobs")),
    Rule("SubmitJob.dependsOn.max", (SUBMIT,), Kind.LIMIT,
         '"A job can depend upon a maximum of 20 jobs."', api("API_SubmitJob")),
    Rule("SubmitJob.dependsOn.SEQUENTIAL", (SUBMIT,), Kind.REQUIRED_WHEN,
         "A SEQUENTIAL dependency is given without a jobId, on an array job: each child waits for the one "
         "before it, starting at index 0.", api("API_SubmitJob")),
    Rule("SubmitJob.dependsOn.N_TO_N", (SUBMIT,), Kind.REQUIRED_WHEN,
         "An N_TO_N dependency names another array job: each child waits for the child of the same index.",
         api("API_SubmitJob")),
    Rule("RetryStrategy.attempts.range", (SUBMIT, REGISTER), Kind.RANGE,
         '"You can specify between 1 and 10 attempts."', api("API_RetryStrategy")),
    Rule("RetryStrategy.attempts.count", (SUBMIT, REGISTER), Kind.BEHAVIOUR,
         "attempts is the number of times the job is moved to RUNNABLE: a failing job runs that many times.",
         api("API_RetryStrategy")),
    Rule("RetryStrategy.evaluateOnExit.max", (SUBMIT, REGISTER), Kind.LIMIT,
         'evaluateOnExit: "Array of up to 5 objects".', api("API_RetryStrategy")),
    Rule("RetryStrategy.evaluateOnExit.needs-attempts", (SUBMIT, REGISTER), Kind.REQUIRED_WHEN,
         "When evaluateOnExit is given, attempts must be given too.", api("API_RetryStrategy")),
    Rule("RetryStrategy.evaluateOnExit.none-matching-retries", (SUBMIT, REGISTER), Kind.BEHAVIOUR,
         '"If none of the listed conditions match, then the job is retried."', api("API_RetryStrategy")),
    Rule("EvaluateOnExit.patterns.form", (SUBMIT, REGISTER), Kind.VALIDATES,
         "onStatusReason and onReason: up to 512 letters, numbers, periods, colons and white space; onExitCode: "
         "up to 512 digits; each may end with an asterisk.", api("API_EvaluateOnExit")),
    Rule("EvaluateOnExit.conditions.all", (SUBMIT, REGISTER), Kind.BEHAVIOUR,
         "The action is taken when all the conditions given match; a trailing * matches the start of the value.",
         api("API_EvaluateOnExit")),
    Rule("EvaluateOnExit.patterns.case", (SUBMIT, REGISTER), Kind.BEHAVIOUR,
         '"only the start of the string needs to be an exact match".', api("API_EvaluateOnExit"),
         Status.NOT_FOLLOWED,
         "batchemu matches onStatusReason, onReason and onExitCode without regard to letter case (service jobs "
         "too), so a pattern that differs from the reason only in case decides here and may not on AWS"),
    Rule("EvaluateOnExit.action.case", (SUBMIT, REGISTER), Kind.VALIDATES,
         'action: "The values aren\'t case sensitive."', api("API_EvaluateOnExit")),
    Rule("SubmitJob.retryStrategy.overrides", (SUBMIT,), Kind.DEFAULT,
         "A retryStrategy given to SubmitJob overrides the job definition's.", api("API_SubmitJob")),
    Rule("JobTimeout.attemptDurationSeconds.minimum", (SUBMIT, REGISTER), Kind.RANGE,
         'attemptDurationSeconds: "The minimum value for the timeout is 60 seconds."', api("API_JobTimeout")),
    Rule("JobTimeout.terminates", (SUBMIT, REGISTER), Kind.BEHAVIOUR,
         "Measured from the attempt's startedAt: after it, Batch terminates the job if it hasn't finished.",
         api("API_JobTimeout")),
    Rule("SubmitJob.timeout.overrides", (SUBMIT,), Kind.DEFAULT,
         "A timeout given to SubmitJob overrides the job definition's.", api("API_SubmitJob")),
    Rule("SubmitJob.timeout.not-retried", (SUBMIT, REGISTER), Kind.BEHAVIOUR,
         '"If a job is terminated due to a timeout, it isn\'t retried."', api("API_SubmitJob")),
    Rule("JobTimeout.array-children", (SUBMIT,), Kind.BEHAVIOUR,
         "For array jobs the timeout applies to the child jobs, which have the parent's timeout, not to the "
         "parent.", api("API_JobTimeout")),
    Rule("JobTimeout.multi-node-whole-job", (SUBMIT,), Kind.BEHAVIOUR,
         "For multi-node parallel jobs the timeout applies to the whole job, not to the nodes.",
         api("API_JobTimeout")),
    Rule("SubmitJob.tags.empty", (SUBMIT,), Kind.LIMIT,
         "tags: a map of 1 to 50 tags (botocore: min 1).", api("API_SubmitJob"), Status.RELAXED,
         "AWS accepts tags={}, which Airflow's BatchOperator sends (`tags or {}`): see parser.RELAXED"),
    Rule("SubmitJob.propagateTags.default", (SUBMIT,), Kind.DEFAULT,
         "Tags are not propagated unless asked; propagateTags given to SubmitJob overrides the definition's.",
         api("API_SubmitJob")),
    Rule("SubmitJob.propagateTags.combined-limit", (SUBMIT,), Kind.BEHAVIOUR,
         "When the job's and the job definition's tags together are over 50, the job is moved to FAILED; a "
         "tag of the job wins over the definition's of the same name.", api("API_SubmitJob")),
    Rule("SubmitJob.shareIdentifier.fair-share", (SUBMIT,), Kind.REQUIRED_WHEN,
         "shareIdentifier must be given on a queue with a fair-share scheduling policy and must not be given on "
         "any other.", api("API_SubmitJob")),
    Rule("SubmitJob.shareIdentifier.form", (SUBMIT,), Kind.LIMIT,
         'shareIdentifier: "limited to 255 alphanumeric characters, and can be followed by an asterisk".',
         api("API_SubmitJob")),
    Rule("SubmitJob.shareIdentifier.active-limit", (SUBMIT,), Kind.LIMIT,
         '"Job queues with a scheduling policy are limited to 500 active share identifiers at a time."',
         api("API_SubmitJob")),
    Rule("SubmitJob.schedulingPriorityOverride.range", (SUBMIT,), Kind.RANGE,
         "schedulingPriorityOverride: minimum 0, maximum 9999.", api("API_SubmitJob")),
    Rule("SubmitJob.schedulingPriorityOverride.fair-share-only", (SUBMIT,), Kind.REQUIRED_WHEN,
         '"This only affects jobs in job queues with a fair-share policy."', api("API_SubmitJob"),
         Status.NOT_FOLLOWED,
         "batchemu refuses schedulingPriorityOverride on a queue without a fair-share policy, as it refuses "
         "shareIdentifier there, instead of ignoring it: the reference says only that it has no effect there"),
    Rule("SubmitJob.schedulingPriorityOverride.overrides", (SUBMIT,), Kind.DEFAULT,
         "schedulingPriorityOverride overrides the job definition's schedulingPriority.", api("API_SubmitJob")),
    Rule("SubmitJob.nodeOverrides.multi-node-only", (SUBMIT,), Kind.REQUIRED_WHEN,
         "nodeOverrides is for multi-node parallel jobs, not for jobs on Fargate (use containerOverrides).",
         api("API_NodeOverrides")),
    Rule("SubmitJob.nodeOverrides.containerOverrides.exclusive", (SUBMIT,), Kind.ONE_OF,
         "containerOverrides and nodeOverrides are not given together: node overrides carry their own.",
         api("API_SubmitJob")),
    Rule("SubmitJob.propertiesOverride.kind", (SUBMIT,), Kind.ONE_OF,
         "ecsPropertiesOverride only for jobs on Amazon ECS, eksPropertiesOverride only for jobs on Amazon EKS.",
         api("API_SubmitJob")),
    Rule("NodeOverrides.numNodes.conditions", (SUBMIT,), Kind.REQUIRED_WHEN,
         "numNodes can be overridden only with an open-ended node range (: or n:) whose lower bound, and the "
         "main node, are below the new number of nodes.", api("API_NodeOverrides")),
)

_DESCRIBE_JOBS: tuple[Rule, ...] = (
    Rule("DescribeJobs.jobs.max", ("DescribeJobs",), Kind.LIMIT,
         'jobs: "A list of up to 100 job IDs."', api("API_DescribeJobs")),
    Rule("JobDetail.createdAt.array-child", ("DescribeJobs", "ListJobs"), Kind.BEHAVIOUR,
         "An array child's createdAt is when its parent spawned it and it entered PENDING.",
         api("API_JobDetail")),
    Rule("JobDetail.startedAt.running", ("DescribeJobs", "ListJobs"), Kind.PRESENT_WHEN,
         "startedAt is when the job moved from STARTING to RUNNING: a job that never ran has none.",
         api("API_JobDetail")),
    Rule("JobDetail.stoppedAt.terminal", ("DescribeJobs", "ListJobs"), Kind.PRESENT_WHEN,
         "stoppedAt is when the job moved from RUNNING to SUCCEEDED or FAILED.", api("API_JobDetail"),
         Status.RELAXED,
         "a job cancelled or failed before it ran gets stoppedAt too: Metaflow takes stoppedAt > 0 as done and "
         "would wait forever for a job cancelled in its queue"),
    Rule("JobDetail.container.multi-container", ("DescribeJobs",), Kind.PRESENT_WHEN,
         '"If the details are for a multiple-container job, this object will be empty."', api("API_JobDetail"),
         Status.NOT_FOLLOWED,
         "a job of an ecsProperties or eksProperties definition has no `container` at all rather than an empty "
         "one; its containers are in ecsProperties or eksProperties"),
    Rule("JobDetail.nodeProperties.nodeDetails", ("DescribeJobs",), Kind.PRESENT_WHEN,
         "A multi-node parallel job has nodeProperties; each of its nodes has nodeDetails (nodeIndex, "
         "isMainNode).", api("API_JobDetail")),
    Rule("ArrayProperties.parent-child", ("DescribeJobs", "ListJobs"), Kind.PRESENT_WHEN,
         "arrayProperties: size and statusSummary are returned for parent array jobs, index for their children.",
         api("API_ArrayPropertiesDetail")),
    Rule("ContainerDetail.taskArn.logStreamName", ("DescribeJobs",), Kind.PRESENT_WHEN,
         "A container attempt gets its taskArn when it reaches STARTING and its logStreamName when it reaches "
         "RUNNING.", api("API_ContainerDetail")),
    Rule("ContainerDetail.logStreamName.group", ("DescribeJobs",), Kind.DEFAULT,
         '"The log group for Batch jobs is /aws/batch/job."', api("API_ContainerDetail")),
    Rule("JobDetail.statusReason.blocked", ("DescribeJobs",), Kind.BEHAVIOUR,
         "A RUNNABLE job no compute environment can take says why: MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE "
         "when every maxvCpus is below what it needs.", api("API_JobDetail")),
    Rule("ContainerDetail.reason.max", ("DescribeJobs",), Kind.LIMIT,
         'reason: "A short (255 max characters) human-readable string".', api("API_ContainerDetail")),
)

_LIST_JOBS: tuple[Rule, ...] = (
    Rule("ListJobs.scope.one-of", ("ListJobs",), Kind.ONE_OF,
         "Exactly one of a job queue, an array job ID (its children) or a multi-node job ID (its nodes).",
         api("API_ListJobs")),
    Rule("ListJobs.jobStatus.default", ("ListJobs",), Kind.DEFAULT,
         '"If you don\'t specify a status, only RUNNING jobs are returned."', api("API_ListJobs")),
    Rule("ListJobs.filters.jobStatus-ignored", ("ListJobs",), Kind.FILTER,
         "With a filter, jobStatus is ignored and jobs of every status are returned, except with "
         "SHARE_IDENTIFIER, which combines with jobStatus.", api("API_ListJobs")),
    Rule("ListJobs.filters.one", ("ListJobs",), Kind.LIMIT,
         '"Only one filter can be used at a time."', api("API_ListJobs")),
    Rule("ListJobs.filters.newest-first", ("ListJobs",), Kind.FILTER,
         "Filtered results are sorted by createdAt, the most recent first.", api("API_ListJobs")),
    Rule("ListJobs.filters.not-children", ("ListJobs",), Kind.FILTER,
         "A filter doesn't apply to the child jobs of an array or multi-node parallel job.", api("API_ListJobs")),
    Rule("ListJobs.JOB_NAME.forms", ("ListJobs",), Kind.FILTER,
         "JOB_NAME is case-insensitive; a value ending in * matches every name that begins with what precedes "
         "it.", api("API_ListJobs")),
    Rule("ListJobs.JOB_DEFINITION.forms", ("ListJobs",), Kind.FILTER,
         "JOB_DEFINITION: a name (every revision, case-sensitive), a name ending in * (a prefix), or an ARN "
         "with revision (that revision); * isn't supported with an ARN.", api("API_ListJobs")),
    Rule("ListJobs.CREATED_AT.forms", ("ListJobs",), Kind.FILTER,
         "BEFORE_CREATED_AT and AFTER_CREATED_AT take milliseconds since the epoch, as a string.",
         api("API_ListJobs")),
    Rule("ListJobs.maxResults.filtered", ("ListJobs",), Kind.LIMIT,
         "maxResults minimum 1; a page holds up to 1000 jobs, up to 100 when a filter is used.",
         api("API_ListJobs")),
    Rule("ListJobs.nextToken.last-page", ("ListJobs",), Kind.PRESENT_WHEN,
         'nextToken: "This value is null when there are no more results to return."', api("API_ListJobs")),
    Rule("ListJobs.array-parent.pending", ("ListJobs", "DescribeJobs"), Kind.BEHAVIOUR,
         "An array parent is PENDING once a child is RUNNABLE, and stays PENDING while its children run.",
         api("API_ListJobs")),
    Rule("JobSummary.isCancelled.only-when-true", ("ListJobs",), Kind.PRESENT_WHEN,
         'isCancelled and isTerminated: "This field is only present when the value is true."',
         api("API_JobSummary")),
)

_CANCEL_AND_TERMINATE: tuple[Rule, ...] = (
    Rule("CancelJob.queued-only", CANCEL_OPERATIONS, Kind.BEHAVIOUR,
         "SUBMITTED, PENDING and RUNNABLE jobs are cancelled (FAILED); STARTING and RUNNING ones aren't, and "
         "the call still succeeds.", api("API_CancelJob")),
    Rule("CancelJob.pending-after-dependencies", CANCEL_OPERATIONS, Kind.BEHAVIOUR,
         '"A PENDING job is cancelled after all dependency jobs are completed."', api("API_CancelJob"),
         Status.NOT_FOLLOWED,
         "batchemu cancels a PENDING job at once, without waiting for its dependencies: the delay is how AWS "
         "gets there, not something a caller can use"),
    Rule("CancelJob.array-parent", CANCEL_OPERATIONS + TERMINATE_OPERATIONS, Kind.BEHAVIOUR,
         "Cancelling an array parent cancels all its children; the parent is cancelled when they have all "
         "completed.", api("API_CancelJob")),
    Rule("TerminateJob.statuses", TERMINATE_OPERATIONS, Kind.BEHAVIOUR,
         "STARTING and RUNNING jobs are terminated (FAILED); jobs that have not reached STARTING are cancelled.",
         api("API_TerminateJob")),
    Rule("CancelJob.reason", CANCEL_OPERATIONS + TERMINATE_OPERATIONS, Kind.LIMIT,
         "reason: at most 1024 characters, returned by DescribeJobs afterwards.", api("API_CancelJob")),
    Rule("CancelJobs.jobs.max", BULK, Kind.LIMIT,
         "Up to 50 jobs in one call.", api("API_CancelJobs")),
    Rule("CancelJobs.not-found-processed", BULK, Kind.BULK,
         '"Jobs that can\'t be found are treated as successfully processed."', api("API_CancelJobs")),
    Rule("CancelJobs.errors", BULK, Kind.BULK,
         "Each job is reported in successful or in errors (code and message, ValidationException for a malformed "
         "identifier), with HTTP 200 either way.", api("API_CancelJobsErrorDetail")),
)

_OTHER_LISTINGS: tuple[Rule, ...] = (
    Rule("ListJobsByConsumableResource.filters", ("ListJobsByConsumableResource",), Kind.FILTER,
         "Filters JOB_STATUS (a status) and JOB_NAME (case-insensitive, a trailing * matches a prefix); only "
         "jobs that require the resource.", api("API_ListJobsByConsumableResource")),
    Rule("ListJobsByConsumableResource.maxResults", ("ListJobsByConsumableResource",), Kind.LIMIT,
         "maxResults between 1 and 100; up to 100 results without it.", api("API_ListJobsByConsumableResource")),
    Rule("GetJobQueueSnapshot.frontOfQueue", ("GetJobQueueSnapshot",), Kind.BEHAVIOUR,
         "The first 100 RUNNABLE jobs of the queue (name or ARN) in order of dispatch: by submission time on a "
         "FIFO queue.", api("API_GetJobQueueSnapshot")),
    Rule("GetJobQueueSnapshot.fairshareUtilization", ("GetJobQueueSnapshot",), Kind.PRESENT_WHEN,
         "fairshareUtilization is for queues with a fair-share policy: the top 20 shares by capacity used.",
         api("API_FairshareUtilizationDetail")),
    Rule("GetJobQueueSnapshot.activeShareCount", ("GetJobQueueSnapshot",), Kind.BEHAVIOUR,
         'activeShareCount: the active shares "that are currently utilizing capacity" (jobs on hosts).',
         api("API_FairshareUtilizationDetail")),
    Rule("GetJobQueueSnapshot.frontOfQuotaShares", ("GetJobQueueSnapshot",), Kind.PRESENT_WHEN,
         "A queue with a quota-share policy also lists the first RUNNABLE job of each quota share, and the "
         "capacity each quota share uses.", api("API_GetJobQueueSnapshot")),
    Rule("GetJobQueueSnapshot.capacityUnit", ("GetJobQueueSnapshot",), Kind.BEHAVIOUR,
         "Capacity is counted in VCPU for Amazon EC2 and in cpu for Amazon EKS.",
         api("API_FairshareCapacityUsage")),
)

JOB_RULES: tuple[Rule, ...] = (*_SUBMIT_JOB, *_DESCRIBE_JOBS, *_LIST_JOBS, *_CANCEL_AND_TERMINATE, *_OTHER_LISTINGS)
