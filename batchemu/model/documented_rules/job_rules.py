"""Documented rules of the job operations: SubmitJob's own members (array, dependencies, retries, timeout, tags,
share and priority), DescribeJobs' "only present when" fields, ListJobs' filters, the cancel and terminate
operations single and bulk, ListJobsByConsumableResource and GetJobQueueSnapshot."""

from __future__ import annotations

from batchemu.model.documented_rules.rule import Kind, Rule, Status, api

JOB_RULES: tuple[Rule, ...] = (
    Rule("JobTimeout.attemptDurationSeconds.minimum", ("SubmitJob", "RegisterJobDefinition"), Kind.RANGE,
         'attemptDurationSeconds: "The minimum value for the timeout is 60 seconds."', api("API_JobTimeout")),
    Rule("ArrayProperties.size.range", ("SubmitJob",), Kind.RANGE,
         "An array job's size is between 2 and 10,000.", api("API_ArrayProperties")),
    Rule("SubmitJob.tags.empty", ("SubmitJob",), Kind.LIMIT,
         "tags: a map of 1 to 50 tags (botocore: min 1).", api("API_SubmitJob"), Status.RELAXED,
         "AWS accepts tags={}, which Airflow's BatchOperator sends (`tags or {}`): see parser.RELAXED"),
    Rule("EvaluateOnExit.action.case", ("SubmitJob", "RegisterJobDefinition"), Kind.VALIDATES,
         'action: "The values aren\'t case sensitive."', api("API_EvaluateOnExit")),
)
