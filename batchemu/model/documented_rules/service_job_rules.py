"""Documented rules of consumable resources, service environments, service jobs (SageMaker training jobs through
Batch) and tagging."""

from __future__ import annotations

from batchemu.model.documented_rules.rule import Kind, Rule, Status, api, guide

_TAGGED = ("TagResource", "CreateComputeEnvironment", "CreateConsumableResource", "CreateJobQueue", "CreateQuotaShare",
           "CreateSchedulingPolicy", "CreateServiceEnvironment", "RegisterJobDefinition", "SubmitJob", "SubmitServiceJob")

CONSUMABLE_RESOURCE_RULES: tuple[Rule, ...] = (
    Rule("CreateConsumableResource.totalQuantity.non_negative", ("CreateConsumableResource",), Kind.RANGE,
         'totalQuantity: "Must be non-negative."', api("API_CreateConsumableResource")),
    Rule("CreateConsumableResource.resourceType.default", ("CreateConsumableResource",), Kind.DEFAULT,
         "resourceType is REPLENISHABLE (the default) or NON_REPLENISHABLE.", api("API_CreateConsumableResource")),
    Rule("CreateConsumableResource.consumableResourceName.unique", ("CreateConsumableResource",), Kind.VALIDATES,
         "The resource name must be unique at the account level.", guide("resource-aware-scheduling-how-to-create")),
    Rule("CreateConsumableResource.count.limit", ("CreateConsumableResource",), Kind.LIMIT,
         "At most 50k consumable resources per account.", guide("service_limits")),
    Rule("UpdateConsumableResource.quantity.non_negative", ("UpdateConsumableResource",), Kind.RANGE,
         'quantity: "Must be a non-negative value."', api("API_UpdateConsumableResource")),
    Rule("UpdateConsumableResource.operation.quantities", ("UpdateConsumableResource",), Kind.BEHAVIOUR,
         "SET makes quantity the new total, ADD adds it to the total, REMOVE takes it off (a total never goes "
         "below 0, as totalQuantity must be non-negative).", api("API_UpdateConsumableResource")),
    Rule("UpdateConsumableResource.clientToken.once", ("UpdateConsumableResource",), Kind.BEHAVIOUR,
         "Two updates with identical payloads and clientToken are the same request: both succeed, the update "
         "happens once; a clientToken is valid for 8 hours.", api("API_UpdateConsumableResource")),
    Rule("UpdateConsumableResource.totalQuantity.below_in_use", ("UpdateConsumableResource",), Kind.BEHAVIOUR,
         "A new total below the units in use reduces the available quantity at once and reaches the new number "
         "as jobs finish.", guide("resource-aware-scheduling-how-to-update-quantity")),
    Rule("DeleteConsumableResource.in_use.allowed", ("DeleteConsumableResource",), Kind.BEHAVIOUR,
         "A consumable resource can be deleted at any time, even while jobs that require it are running.",
         guide("resource-aware-scheduling-how-to-delete")),
    Rule("DeleteConsumableResource.recreate.same_resource", ("DeleteConsumableResource", "CreateConsumableResource"),
         Kind.BEHAVIOUR, "Deleted and re-created with the same name, it is the same resource, and RUNNABLE jobs "
         "can use it.", guide("resource-aware-scheduling-how-to-delete")),
    Rule("DeleteConsumableResource.release.ignored", ("DeleteConsumableResource",), Kind.BEHAVIOUR,
         "What jobs held of a deleted REPLENISHABLE resource is ignored when they complete (not given back, even "
         "to a resource re-created with the same name).", guide("resource-aware-scheduling-how-to-delete")),
    Rule("DescribeConsumableResource.availableQuantity", ("DescribeConsumableResource",), Kind.BEHAVIOUR,
         "availableQuantity is the amount currently available to use (the total less what jobs hold); an unknown "
         "name or ARN is a ClientException.", api("API_DescribeConsumableResource")),
    Rule("ListConsumableResources.filters.name", ("ListConsumableResources",), Kind.FILTER,
         "CONSUMABLE_RESOURCE_NAME values match case-insensitively; a value ending in '*' matches the names "
         "beginning with what precedes it.", api("API_ListConsumableResources")),
    Rule("ListConsumableResources.maxResults.range", ("ListConsumableResources",), Kind.RANGE,
         "maxResults is between 1 and 100; without it up to 100 results and a nextToken.",
         api("API_ListConsumableResources")),
    Rule("KeyValuesPair.name.case_sensitive", ("ListConsumableResources", "ListServiceJobs"), Kind.FILTER,
         'name: "Filter names are case sensitive."', api("API_KeyValuesPair")),
    Rule("ConsumableResourceRequirement.same_checks", ("RegisterJobDefinition", "SubmitJob"), Kind.VALIDATES,
         "A requirement names an existing consumable resource (name or ARN) and a quantity that is needed; "
         "SubmitJob's consumableResourcePropertiesOverride updates the quantities, so both operations check "
         "them alike (a quantity of at least 1).", guide("resource-aware-scheduling-how-to-for-jobs")),
    Rule("ConsumableResourceProperties.gating", ("SubmitJob",), Kind.BEHAVIOUR,
         "A job waits in RUNNABLE until every resource it requires is available; resources are locked at "
         "STARTING and unlocked at SUCCEEDED or FAILED.", guide("resource-aware-scheduling-how-to-for-jobs")),
    Rule("ConsumableResourceProperties.console_limit", ("RegisterJobDefinition",), Kind.LIMIT,
         "The console's job definition wizard takes up to 5 resources per job.",
         guide("resource-aware-scheduling-how-to-for-jobs"), Status.RELAXED,
         "the limit is stated for the console's wizard; the API reference sets none, so batchemu accepts more"),
    Rule("NodeRangeProperty.consumableResourceProperties", ("RegisterJobDefinition",), Kind.BEHAVIOUR,
         "Resource-aware scheduling can be used with array jobs, multi-node parallel jobs and regular jobs.",
         guide("resource-aware-scheduling"), Status.NOT_FOLLOWED,
         "batchemu refuses consumableResourceProperties inside a node range at RegisterJobDefinition: it does not "
         "yet hold resources per node group of a multi-node parallel job"),
)

SERVICE_ENVIRONMENT_RULES: tuple[Rule, ...] = (
    Rule("CreateServiceEnvironment.serviceEnvironmentName.pattern", ("CreateServiceEnvironment",), Kind.VALIDATES,
         "Up to 128 characters: letters, numbers, hyphens and underscores.", api("API_CreateServiceEnvironment")),
    Rule("CreateServiceEnvironment.state.default", ("CreateServiceEnvironment",), Kind.DEFAULT,
         'state: "The default value is ENABLED."', api("API_CreateServiceEnvironment")),
    Rule("CapacityLimit.capacityUnit.forms", ("CreateServiceEnvironment", "UpdateServiceEnvironment"),
         Kind.VALIDATES, "capacityUnit is NUM_INSTANCES, or an instance type (ml.m5.large) in a quota management "
         "enabled service environment.", api("API_CapacityLimit")),
    Rule("CapacityLimit.maxCapacity.instances", ("CreateServiceEnvironment", "SubmitServiceJob"), Kind.BEHAVIOUR,
         "A job takes the instances its training request asks for; one that does not fit waits in the queue "
         "until capacity is available.", api("API_CapacityLimit")),
    Rule("CapacityLimit.capacityUnit.instance_type", ("CreateServiceEnvironment", "SubmitServiceJob"),
         Kind.BEHAVIOUR, "With capacityUnit=ml.m5.large only ml.m5.large instances count against the limit; jobs "
         "needing other instance types wait until a matching capacity limit is configured.",
         api("API_CapacityLimit")),
    Rule("CreateServiceEnvironment.count.limit", ("CreateServiceEnvironment",), Kind.LIMIT,
         "At most 50 service environments.", guide("service_limits")),
    Rule("DeleteServiceEnvironment.disabled_and_unused", ("DeleteServiceEnvironment",), Kind.REQUIRED_WHEN,
         "Before deleting, set its state to DISABLED and disassociate it from every job queue.",
         api("API_DeleteServiceEnvironment")),
    Rule("UpdateServiceEnvironment.state.disabled", ("UpdateServiceEnvironment",), Kind.BEHAVIOUR,
         "ENABLED to DISABLED prevents new service jobs from being placed in the service environment.",
         api("API_UpdateServiceEnvironment")),
    Rule("DescribeServiceEnvironments.maxResults.range", ("DescribeServiceEnvironments",), Kind.RANGE,
         "maxResults is between 1 and 100; without it up to 100 results and a nextToken.",
         api("API_DescribeServiceEnvironments")),
)

SERVICE_JOB_RULES_ONLY: tuple[Rule, ...] = (
    Rule("SubmitServiceJob.jobName.pattern", ("SubmitServiceJob",), Kind.VALIDATES,
         "Up to 128 characters: letters, numbers, hyphens and underscores.", api("API_SubmitServiceJob")),
    Rule("SubmitServiceJob.jobQueue.type", ("SubmitServiceJob",), Kind.VALIDATES,
         'jobQueue: "The job queue must have the type SAGEMAKER_TRAINING."', api("API_SubmitServiceJob")),
    Rule("SubmitServiceJob.schedulingPriority.range", ("SubmitServiceJob", "UpdateServiceJob"), Kind.RANGE,
         "schedulingPriority is an integer between 0 and 9999, at submit and at update.",
         api("API_UpdateServiceJob")),
    Rule("SubmitServiceJob.shareIdentifier.fair_share", ("SubmitServiceJob",), Kind.REQUIRED_WHEN,
         "shareIdentifier must be given on a queue with a fair-share policy, and not on any other.",
         api("API_SubmitServiceJob")),
    Rule("SubmitServiceJob.quotaShareName.quota_share", ("SubmitServiceJob",), Kind.REQUIRED_WHEN,
         "quotaShareName must be given on a queue with a quota share policy, and not on any other.",
         api("API_SubmitServiceJob")),
    Rule("ServiceJobRetryStrategy.attempts.range", ("SubmitServiceJob",), Kind.RANGE,
         "attempts: between 1 and 10.", api("API_ServiceJobRetryStrategy")),
    Rule("ServiceJobRetryStrategy.attempts.total", ("SubmitServiceJob",), Kind.BEHAVIOUR,
         "attempts is the total number of tries: a failed job is retried until that many attempts have run.",
         guide("service-job-retries")),
    Rule("ServiceJobEvaluateOnExit.onStatusReason.pattern", ("SubmitServiceJob",), Kind.VALIDATES,
         "onStatusReason is a glob of up to 512 printable characters; a trailing '*' matches the start of the "
         "status reason only.", api("API_ServiceJobEvaluateOnExit")),
    Rule("ServiceJobTimeout.attemptDurationSeconds", ("SubmitServiceJob",), Kind.BEHAVIOUR,
         "After attemptDurationSeconds Batch terminates the attempt; without timeoutConfig the service's own "
         "timeout applies.", api("API_SubmitServiceJob")),
    Rule("ServiceJobPreemptionConfiguration.preemptionRetriesBeforeTermination", ("SubmitServiceJob",),
         Kind.BEHAVIOUR, "A job is terminated once its preemption retries are used up; unset, a preempted job is "
         "requeued without limit.", api("API_ServiceJobPreemptionConfiguration")),
    Rule("SubmitServiceJob.clientToken.rejected", ("SubmitServiceJob",), Kind.BEHAVIOUR,
         "Two submits with identical payloads and clientToken are the same request, and the second is rejected.",
         api("API_SubmitServiceJob")),
    Rule("SubmitServiceJob.serviceRequestPayload.pass_through", ("SubmitServiceJob",), Kind.VALIDATES,
         "Batch validates its own parameters; the serviceRequestPayload is passed through without validation.",
         guide("service-job-submit"), Status.NOT_FOLLOWED,
         "batchemu refuses at submit a payload that is not a JSON object, as it reads its ResourceConfig to count "
         "capacity; what SageMaker would refuse in a JSON object fails the job once scheduled, with SageMaker's "
         "message as statusReason, as on AWS"),
    Rule("SubmitServiceJob.states.order", ("SubmitServiceJob", "DescribeServiceJob"), Kind.BEHAVIOUR,
         "SUBMITTED, then RUNNABLE; SCHEDULED once capacity is available and the job is passed to SageMaker, "
         "STARTING, RUNNING, then SUCCEEDED or FAILED.", guide("service-job-submit")),
    Rule("SubmitServiceJob.serviceRequestPayload.size", ("SubmitServiceJob",), Kind.LIMIT,
         "The service request payload is at most 10 KiB.", guide("service_limits")),
    Rule("SubmitServiceJob.request.size", ("SubmitServiceJob",), Kind.LIMIT,
         "A SubmitServiceJob request is at most 30 KiB.", guide("service_limits")),
    Rule("SubmitServiceJob.rate.limit", ("SubmitServiceJob",), Kind.LIMIT,
         "At most 5 SubmitServiceJob transactions per second per account.", guide("service_limits"),
         Status.NOT_FOLLOWED, "batchemu throttles no operation: a local emulator serves as fast as it can, so a "
         "client's retry-on-throttle path is not exercised"),
    Rule("DescribeServiceJob.capacityUsage.instances", ("DescribeServiceJob",), Kind.BEHAVIOUR,
         "capacityUsage: the number of instances is the payload's InstanceCount.", api("API_DescribeServiceJob")),
    Rule("DescribeServiceJob.present_when", ("DescribeServiceJob",), Kind.PRESENT_WHEN,
         "scheduledAt once the job is dispatched to SageMaker (SCHEDULED); preemptionSummary only once it has been "
         "preempted; an unknown jobId is a ClientException.", api("API_DescribeServiceJob")),
    Rule("ListServiceJobs.jobStatus.default", ("ListServiceJobs",), Kind.FILTER,
         '"If you don\'t specify a status, only RUNNING jobs are returned."', api("API_ListServiceJobs")),
    Rule("ListServiceJobs.filters.status_ignored", ("ListServiceJobs",), Kind.FILTER,
         "With a filter, jobStatus is ignored and jobs of any status come back, newest first; SHARE_IDENTIFIER and "
         "QUOTA_SHARE_NAME combine with jobStatus.", api("API_ListServiceJobs")),
    Rule("ListServiceJobs.filters.one", ("ListServiceJobs",), Kind.FILTER,
         '"Only one filter can be used at a time."', api("API_ListServiceJobs")),
    Rule("ListServiceJobs.filters.JOB_NAME", ("ListServiceJobs",), Kind.FILTER,
         "JOB_NAME matches case-insensitively; a value ending in '*' matches names beginning with the rest.",
         api("API_ListServiceJobs")),
    Rule("ListServiceJobs.filters.created_at", ("ListServiceJobs",), Kind.FILTER,
         "BEFORE_CREATED_AT and AFTER_CREATED_AT take milliseconds since the epoch as a string.",
         api("API_ListServiceJobs")),
    Rule("ListServiceJobs.maxResults.range", ("ListServiceJobs",), Kind.RANGE,
         "maxResults is between 1 and 100; without it up to 100 results and a nextToken.",
         api("API_ListServiceJobs")),
    Rule("ServiceJobSummary.isTerminated.only_true", ("ListServiceJobs",), Kind.PRESENT_WHEN,
         'isTerminated: "This field is only present when the value is true."', api("API_ServiceJobSummary")),
    Rule("TerminateServiceJobs.jobs.limit", ("TerminateServiceJobs",), Kind.LIMIT,
         "Up to 50 service job IDs per call.", api("API_TerminateServiceJobs")),
    Rule("TerminateServiceJobs.unknown.successful", ("TerminateServiceJobs",), Kind.BULK,
         '"Service jobs that can\'t be found are treated as successfully processed"; HTTP 200 even with errors.',
         api("API_TerminateServiceJobs")),
    Rule("TerminateServiceJobs.errors.malformed", ("TerminateServiceJobs",), Kind.BULK,
         "An identifier that is malformed or not valid is reported in errors as ValidationException.",
         api("API_TerminateServiceJobsErrorDetail"), Status.RELAXED,
         "AWS documents no form of a service job ID, so batchemu takes every string as one: an ID it does not "
         "know counts as processed, as the operation's page says"),
    Rule("TerminateServiceJob.reason.statusReason", ("TerminateServiceJob", "TerminateServiceJobs"),
         Kind.BEHAVIOUR, "The reason is returned by DescribeServiceJob (statusReason) of the terminated job.",
         api("API_TerminateServiceJob")),
    Rule("UpdateServiceJob.schedulingPriority.order", ("UpdateServiceJob",), Kind.BEHAVIOUR,
         "Within a share of a quota-share or fair-share queue, a higher schedulingPriority is scheduled first.",
         api("API_UpdateServiceJob")),
)

TAG_RULES: tuple[Rule, ...] = (
    Rule("TagResource.tags.merge", ("TagResource",), Kind.BEHAVIOUR,
         "Existing tags not named in the request are not changed; a named key takes the new value.",
         api("API_TagResource")),
    Rule("TagResource.deleted_with_resource", ("TagResource", "DeleteConsumableResource"), Kind.BEHAVIOUR,
         "When a resource is deleted, its tags are deleted as well.", api("API_TagResource")),
    Rule("TagResource.resourceArn.taggable", ("TagResource", "UntagResource", "ListTagsForResource"),
         Kind.VALIDATES, "Resources that support tags are compute environments, jobs, job definitions, job queues "
         "and scheduling policies.", api("API_TagResource"), Status.RELAXED,
         "the list predates the newer resources that take tags at creation: batchemu also tags consumable "
         "resources, service environments, quota shares and service jobs by their ARNs"),
    Rule("TagResource.resourceArn.child_jobs", ("TagResource", "UntagResource", "ListTagsForResource"),
         Kind.VALIDATES, "ARNs of child jobs of array and multi-node parallel jobs aren't supported.",
         api("API_TagResource")),
    Rule("ListTagsForResource.resourceArn.unknown", ("ListTagsForResource", "TagResource", "UntagResource"),
         Kind.VALIDATES, "The ARN names an existing Batch resource; otherwise a ClientException.",
         api("API_ListTagsForResource")),
    Rule("Tags.count.limit", _TAGGED, Kind.LIMIT,
         "At most 50 tags per resource, counting the tags it has and the ones added.", guide("tag-restrictions")),
    Rule("Tags.prefix.reserved", (*_TAGGED, "UntagResource"), Kind.VALIDATES,
         "aws: in any case is reserved as a prefix of keys and of values; such tags can't be edited or deleted.",
         guide("tag-restrictions")),
    Rule("Tags.case_sensitive", ("TagResource", "UntagResource"), Kind.BEHAVIOUR,
         '"Tag keys and values are case sensitive."', guide("tag-restrictions")),
    Rule("Tags.characters.advice", ("TagResource",), Kind.VALIDATES,
         "Generally allowed characters are letters, numbers, spaces and + - = . _ : / @.",
         guide("tag-restrictions"), Status.RELAXED,
         "the page gives these characters as advice for tags shared with other services; batchemu accepts any "
         "key and value botocore's lengths allow"),
    Rule("Tags.on_create.atomic", _TAGGED[1:], Kind.VALIDATES,
         "If tags can't be applied during creation, the creation fails: the resource is created with its tags "
         "or not at all.", guide("tag-resources")),
)

SERVICE_JOB_RULES: tuple[Rule, ...] = (*CONSUMABLE_RESOURCE_RULES, *SERVICE_ENVIRONMENT_RULES, *SERVICE_JOB_RULES_ONLY,
                                       *TAG_RULES)
