// Drives batchemu with the AWS SDK for JavaScript v3, which parses responses more strictly than botocore.
// Usage: node batch_check.mjs ENDPOINT IMAGE
// Runs every check, prints one line per failure and "ok" at the end when none failed (exit 0), else exits 1.
import * as batchSdk from "@aws-sdk/client-batch";
import {
  BatchClient, BatchServiceException, ClientException, paginateListJobs,
} from "@aws-sdk/client-batch";
import {
  CloudWatchLogsClient, DescribeLogStreamsCommand, FilterLogEventsCommand, GetLogEventsCommand,
  InvalidParameterException, ResourceNotFoundException,
} from "@aws-sdk/client-cloudwatch-logs";
import assert from "node:assert/strict";

const [endpoint, image] = process.argv.slice(2);
const region = "us-east-1";
const account = "123456789012";
const config = { endpoint, region, credentials: { accessKeyId: "x", secretAccessKey: "x" }, maxAttempts: 1 };
const batch = new BatchClient(config);
const logs = new CloudWatchLogsClient(config);
const call = (name, input = {}) => batch.send(new batchSdk[`${name}Command`](input));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const suffix = Math.random().toString(36).slice(2, 8);
const arn = (kind, name) => `arn:aws:batch:${region}:${account}:${kind}/${name}`;
const failures = [];

async function check(title, body) {
  try {
    await body();
  } catch (err) {
    failures.push(`${title}: ${err?.name}: ${err?.message}`);
  }
}

// As tests/waiting.py: `timeoutMs` is what an idle machine needs, the deadline allows for a loaded one, and a
// timeout says what was awaited and what was last seen.
const LOAD_FACTOR = Number(process.env.BATCHEMU_TEST_LOAD_FACTOR || 3);
async function until(fn, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs * LOAD_FACTOR;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) {
      throw new Error(`not reached within ${(timeoutMs * LOAD_FACTOR) / 1000} s: ${fn.toString().slice(0, 300)}; ` +
                      `last seen: ${JSON.stringify(value)}`);
    }
    await sleep(100);
  }
}

// A rejected call must be a ClientException (the SDK's own class) with HTTP 400 and a message matching `pattern`.
async function rejectsAsClientException(promise, pattern) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ClientException, `expected ClientException, got ${err?.name}: ${err?.message}`);
    assert.equal(err.name, "ClientException");
    assert.equal(err.$fault, "client");
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.equal(typeof err.$metadata.requestId, "string");
    assert.match(err.message, pattern);
    return true;
  });
}

const isMillis = (value) => Number.isInteger(value) && value > 1.5e12 && value < 1e14;
function assertMillis(object, fields) {
  for (const field of fields) assert.ok(isMillis(object[field]), `${field} = ${object[field]} is not epoch ms`);
}

const ceName = `js-ce-${suffix}`;
const queueName = `js-q-${suffix}`;
const definitionName = `js-jd-${suffix}`;
const policyName = `js-sp-${suffix}`;
const resourceName = `js-cr-${suffix}`;
let definitionArn;
let jobId;

await check("compute environments", async () => {
  const created = await call("CreateComputeEnvironment", { computeEnvironmentName: ceName, type: "MANAGED",
    computeResources: { type: "EC2", maxvCpus: 2, minvCpus: 0, subnets: ["subnet-1"], securityGroupIds: ["sg-1"],
      instanceRole: "ecsInstanceRole", instanceTypes: ["optimal"] }, tags: { team: "js" } });
  assert.equal(created.computeEnvironmentArn, arn("compute-environment", ceName));
  assert.equal(created.$metadata.httpStatusCode, 200);
  const ce = await until(async () => {
    const [found] = (await call("DescribeComputeEnvironments", { computeEnvironments: [ceName] }))
      .computeEnvironments;
    return found.status === "VALID" ? found : null;
  });
  assert.equal(ce.computeResources.maxvCpus, 2);
  assert.deepEqual(ce.computeResources.instanceTypes, ["optimal"]);
  assert.deepEqual(ce.tags, { team: "js" });
  await call("CreateComputeEnvironment", { computeEnvironmentName: `${ceName}-u`, type: "UNMANAGED",
    unmanagedvCpus: 4 });
  const updated = await call("UpdateComputeEnvironment", { computeEnvironment: `${ceName}-u`, state: "DISABLED" });
  assert.equal(updated.computeEnvironmentName, `${ceName}-u`);
  const [unmanaged] = (await call("DescribeComputeEnvironments", { computeEnvironments: [`${ceName}-u`] }))
    .computeEnvironments;
  assert.equal(unmanaged.unmanagedvCpus, 4);
  assert.equal(unmanaged.state, "DISABLED");
  await call("DeleteComputeEnvironment", { computeEnvironment: `${ceName}-u` });
});

await check("job queues", async () => {
  const created = await call("CreateJobQueue", { jobQueueName: queueName, priority: 1,
    computeEnvironmentOrder: [{ order: 1, computeEnvironment: arn("compute-environment", ceName) }] });
  assert.equal(created.jobQueueArn, arn("job-queue", queueName));
  const queue = await until(async () => {
    const [found] = (await call("DescribeJobQueues", { jobQueues: [queueName] })).jobQueues;
    return found.status === "VALID" ? found : null;
  });
  assert.equal(queue.priority, 1);
  assert.equal(queue.computeEnvironmentOrder[0].order, 1);
  await call("UpdateJobQueue", { jobQueue: queueName, priority: 7 });
  assert.equal((await call("DescribeJobQueues", { jobQueues: [queueName] })).jobQueues[0].priority, 7);
});

await check("job definitions", async () => {
  const registered = await call("RegisterJobDefinition", { jobDefinitionName: definitionName, type: "container",
    containerProperties: { image, command: ["echo", "hi"],
      resourceRequirements: [{ type: "VCPU", value: "1" }, { type: "MEMORY", value: "32" }] },
    retryStrategy: { attempts: 2 }, timeout: { attemptDurationSeconds: 600 } });
  assert.equal(registered.revision, 1);
  definitionArn = registered.jobDefinitionArn;
  assert.equal(definitionArn, arn("job-definition", `${definitionName}:1`));
  const [definition] = (await call("DescribeJobDefinitions", { jobDefinitionName: definitionName,
    status: "ACTIVE" })).jobDefinitions;
  assert.equal(definition.revision, 1);
  assert.equal(definition.retryStrategy.attempts, 2);
  assert.equal(definition.timeout.attemptDurationSeconds, 600);
  assert.deepEqual(definition.containerProperties.command, ["echo", "hi"]);
  const second = await call("RegisterJobDefinition", { jobDefinitionName: definitionName, type: "container",
    containerProperties: { image, command: ["true"],
      resourceRequirements: [{ type: "VCPU", value: "1" }, { type: "MEMORY", value: "32" }] } });
  assert.equal(second.revision, 2);
  await call("DeregisterJobDefinition", { jobDefinition: second.jobDefinitionArn });
  const [inactive] = (await call("DescribeJobDefinitions", { jobDefinitions: [second.jobDefinitionArn] }))
    .jobDefinitions;
  assert.equal(inactive.status, "INACTIVE");
});

await check("scheduling policies", async () => {
  const created = await call("CreateSchedulingPolicy", { name: policyName, fairsharePolicy: {
    shareDecaySeconds: 3600, computeReservation: 0, shareDistribution: [{ shareIdentifier: "a", weightFactor: 0.5 }] },
  tags: { team: "js" } });
  assert.equal(created.arn, arn("scheduling-policy", policyName));
  await call("UpdateSchedulingPolicy", { arn: created.arn, fairsharePolicy: { shareDecaySeconds: 60,
    shareDistribution: [{ shareIdentifier: "a", weightFactor: 0.5 }] } });
  const [policy] = (await call("DescribeSchedulingPolicies", { arns: [created.arn] })).schedulingPolicies;
  assert.equal(policy.fairsharePolicy.shareDecaySeconds, 60);
  assert.equal(policy.fairsharePolicy.shareDistribution[0].weightFactor, 0.5);
  const listed = (await call("ListSchedulingPolicies")).schedulingPolicies.map((p) => p.arn);
  assert.ok(listed.includes(created.arn));
  await call("DeleteSchedulingPolicy", { arn: created.arn });
  assert.deepEqual((await call("DescribeSchedulingPolicies", { arns: [created.arn] })).schedulingPolicies, []);
});

await check("consumable resources", async () => {
  const created = await call("CreateConsumableResource", { consumableResourceName: resourceName,
    totalQuantity: 5, resourceType: "REPLENISHABLE" });
  assert.equal(created.consumableResourceArn, arn("consumable-resource", resourceName));
  const updated = await call("UpdateConsumableResource", { consumableResource: resourceName, operation: "ADD",
    quantity: 2 });
  assert.equal(updated.totalQuantity, 7);
  const described = await call("DescribeConsumableResource", { consumableResource: resourceName });
  assert.equal(described.availableQuantity, 7);
  assertMillis(described, ["createdAt"]);
  const listed = (await call("ListConsumableResources")).consumableResources.map((r) => r.consumableResourceName);
  assert.ok(listed.includes(resourceName));
  const byResource = await call("ListJobsByConsumableResource", { consumableResource: resourceName });
  assert.deepEqual(byResource.jobs, []);
  await call("DeleteConsumableResource", { consumableResource: resourceName });
});

await check("tags on ARNs with slashes and colons", async () => {
  for (const resourceArn of [definitionArn, arn("job-queue", queueName)]) {
    await call("TagResource", { resourceArn, tags: { a: "1", b: "2", "k/with:odd chars": "v" } });
    await call("UntagResource", { resourceArn, tagKeys: ["a", "k/with:odd chars"] });
    assert.deepEqual((await call("ListTagsForResource", { resourceArn })).tags, { b: "2" });
  }
});

await check("a job: submit, wait, describe, list, logs", async () => {
  const submitted = await call("SubmitJob", { jobName: `js-job-${suffix}`, jobQueue: queueName,
    jobDefinition: definitionName, parameters: { p: "1" }, tags: { team: "js" } });
  jobId = submitted.jobId;
  assert.equal(submitted.jobArn, arn("job", jobId));
  const job = await until(async () => {
    const [found] = (await call("DescribeJobs", { jobs: [jobId] })).jobs;
    return ["SUCCEEDED", "FAILED"].includes(found.status) ? found : null;
  });
  assert.equal(job.status, "SUCCEEDED", job.statusReason);
  assert.equal(job.statusReason, "Essential container in task exited");
  assert.equal(job.container.exitCode, 0);
  assert.deepEqual(job.parameters, { p: "1" });
  assert.deepEqual(job.tags, { team: "js" });
  assert.equal(job.isCancelled, false);
  assertMillis(job, ["createdAt", "startedAt", "stoppedAt"]);
  assert.ok(job.createdAt <= job.startedAt && job.startedAt <= job.stoppedAt);
  assert.equal(job.attempts.length, 1);
  assertMillis(job.attempts[0], ["startedAt", "stoppedAt"]);
  assert.equal(job.attempts[0].container.exitCode, 0);
  assert.equal(job.retryStrategy.attempts, 2);

  const stream = job.container.logStreamName;
  const events = await until(async () => {
    const page = await logs.send(new GetLogEventsCommand({ logGroupName: "/aws/batch/job", logStreamName: stream,
      startFromHead: true }));
    return page.events.length ? page : null;
  }, 10000);
  assert.deepEqual(events.events.map((e) => e.message), ["hi"]);
  assertMillis(events.events[0], ["timestamp", "ingestionTime"]);
  assert.match(events.nextForwardToken, /^f\//);
  assert.match(events.nextBackwardToken, /^b\//);
  const resumed = await logs.send(new GetLogEventsCommand({ logGroupName: "/aws/batch/job", logStreamName: stream,
    nextToken: events.nextForwardToken, startFromHead: true }));
  assert.deepEqual(resumed.events, []);
  assert.equal(resumed.nextForwardToken, events.nextForwardToken);
  const streams = await logs.send(new DescribeLogStreamsCommand({ logGroupName: "/aws/batch/job",
    logStreamNamePrefix: stream }));
  assert.deepEqual(streams.logStreams.map((s) => s.logStreamName), [stream]);
  assertMillis(streams.logStreams[0], ["creationTime", "firstEventTimestamp", "lastEventTimestamp"]);
  const filtered = await logs.send(new FilterLogEventsCommand({ logGroupName: "/aws/batch/job",
    logStreamNames: [stream], filterPattern: "hi" }));
  assert.deepEqual(filtered.events.map((e) => [e.logStreamName, e.message]), [[stream, "hi"]]);
  assertMillis(filtered.events[0], ["timestamp", "ingestionTime"]);

  const byName = await call("ListJobs", { jobQueue: queueName, filters: [{ name: "JOB_NAME", values: ["js-job-*"] }] });
  assert.deepEqual(byName.jobSummaryList.map((s) => s.jobId), [jobId]);
  const summary = byName.jobSummaryList[0];
  assert.equal(summary.container.exitCode, 0);
  assertMillis(summary, ["createdAt", "startedAt", "stoppedAt"]);
  const byStatus = await call("ListJobs", { jobQueue: queueName, jobStatus: "SUCCEEDED" });
  assert.ok(byStatus.jobSummaryList.some((s) => s.jobId === jobId));
  const byDefinition = await call("ListJobs", { jobQueue: queueName,
    filters: [{ name: "JOB_DEFINITION", values: [definitionName] }] });
  assert.ok(byDefinition.jobSummaryList.some((s) => s.jobId === jobId));
});

await check("cancel, terminate, queue snapshot, paging", async () => {
  const submit = (jobName, extra) => call("SubmitJob", { jobName, jobQueue: queueName, jobDefinition: definitionName,
    ...extra });
  const sleeper = await submit("sleeper", { containerOverrides: { command: ["sleep", "30"] } });
  await until(async () => (await call("DescribeJobs", { jobs: [sleeper.jobId] })).jobs[0].status === "RUNNING");
  // Two vCPUs do not fit beside the sleeper's one on a 2-vCPU environment: this job waits RUNNABLE.
  const blocked = await submit("blocked", { containerOverrides: {
    resourceRequirements: [{ type: "VCPU", value: "2" }, { type: "MEMORY", value: "32" }] } });
  const waiters = await Promise.all(["w1", "w2", "w3"].map((name) => submit(name,
    { dependsOn: [{ jobId: sleeper.jobId }] })));
  const snapshot = await until(async () => {
    const found = await call("GetJobQueueSnapshot", { jobQueue: queueName });
    return found.frontOfQueue?.jobs?.length ? found : null;
  });
  assert.deepEqual(snapshot.frontOfQueue.jobs.map((j) => j.jobArn), [arn("job", blocked.jobId)]);
  assertMillis(snapshot.frontOfQueue.jobs[0], ["earliestTimeAtPosition"]);
  assertMillis(snapshot.frontOfQueue, ["lastUpdatedAt"]);

  await call("CancelJob", { jobId: waiters[0].jobId, reason: "cancelled by js" });
  const cancelled = await call("CancelJobs", { jobs: [waiters[1].jobId, waiters[2].jobId], reason: "bulk cancel" });
  assert.equal((cancelled.successful ?? []).length + (cancelled.errors ?? []).length, 2);
  await call("TerminateJob", { jobId: sleeper.jobId, reason: "terminated by js" });
  const terminated = await call("TerminateJobs", { jobs: [blocked.jobId], reason: "bulk terminate" });
  assert.equal((terminated.successful ?? []).length + (terminated.errors ?? []).length, 1);
  const ids = [sleeper.jobId, blocked.jobId, ...waiters.map((w) => w.jobId)];
  const done = await until(async () => {
    const { jobs } = await call("DescribeJobs", { jobs: ids });
    return jobs.length === ids.length && jobs.every((j) => j.status === "FAILED") ? jobs : null;
  });
  const byId = Object.fromEntries(done.map((j) => [j.jobId, j]));
  assert.equal(byId[sleeper.jobId].statusReason, "terminated by js");
  assert.equal(byId[sleeper.jobId].isTerminated, true);
  assert.equal(byId[sleeper.jobId].container.exitCode, 137);
  assert.equal(byId[blocked.jobId].statusReason, "bulk terminate");
  assert.equal(byId[waiters[0].jobId].statusReason, "cancelled by js");
  assert.equal(byId[waiters[0].jobId].isCancelled, true);
  assert.equal(byId[waiters[1].jobId].statusReason, "bulk cancel");

  const pages = [];
  for await (const page of paginateListJobs({ client: batch, pageSize: 2 }, { jobQueue: queueName,
    filters: [{ name: "JOB_NAME", values: ["*"] }] })) pages.push(page.jobSummaryList.map((s) => s.jobId));
  assert.deepEqual(pages.map((page) => page.length), [2, 2, 2]);
  assert.equal(new Set(pages.flat()).size, pages.flat().length);
  assert.ok(pages.flat().includes(sleeper.jobId) && pages.flat().includes(blocked.jobId));
});

await check("client errors are ClientException with HTTP 400", async () => {
  await rejectsAsClientException(call("SubmitJob", { jobName: "x", jobQueue: "no-such-queue",
    jobDefinition: definitionName }), /no-such-queue/);
  await rejectsAsClientException(call("TerminateJob", { jobId: "no-such-job", reason: "x" }), /no-such-job/);
  await rejectsAsClientException(call("CreateJobQueue", { jobQueueName: `${queueName}-bad`, priority: 1,
    computeEnvironmentOrder: [{ order: 1, computeEnvironment: "no-such-ce" }] }), /no-such-ce/);
  // The SDK does not validate inputs: the server's own validation answers, as AWS's does.
  await rejectsAsClientException(call("SubmitJob", { jobName: "x", jobQueue: queueName }),
    /'jobDefinition' failed to satisfy constraint: Member must not be null/);
  await rejectsAsClientException(call("CreateComputeEnvironment", { computeEnvironmentName: "x", type: "WRONG" }),
    /enum value set/);
  await rejectsAsClientException(call("ListTagsForResource", { resourceArn: "arn:aws:batch:us-east-1:1:nope/x" }),
    /.+/);
});

await check("DescribeJobs of an unknown id", async () => {
  assert.deepEqual((await call("DescribeJobs", { jobs: ["no-such-job"] })).jobs, []);
});

await check("SubmitServiceJob outside a SAGEMAKER_TRAINING queue", async () => {
  await rejectsAsClientException(call("SubmitServiceJob", { jobName: "x", jobQueue: "q",
    serviceJobType: "SAGEMAKER_TRAINING", serviceRequestPayload: "{}" }),
    /jobQueue q (does not exist|is not a SAGEMAKER_TRAINING job queue)/);
});

await check("logs errors", async () => {
  await assert.rejects(logs.send(new GetLogEventsCommand({ logGroupName: "/aws/batch/job",
    logStreamName: "no/such/stream" })), (err) => {
    assert.ok(err instanceof ResourceNotFoundException, `${err?.name}: ${err?.message}`);
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.equal(err.message, "The specified log stream does not exist.");
    return true;
  });
  await assert.rejects(logs.send(new GetLogEventsCommand({ logGroupName: "/aws/batch/job", logStreamName: "x",
    limit: 0 })), (err) => {
    assert.ok(err instanceof InvalidParameterException, `${err?.name}: ${err?.message}`);
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.match(err.message, /limit/);
    return true;
  });
});

// Requests no SDK would send: every answer is a JSON error with the same __type in body and header.
async function raw(path, init, status, type, pattern) {
  const response = await fetch(`${endpoint}${path}`, init);
  assert.equal(response.status, status, `${init.method} ${path}`);
  assert.equal(response.headers.get("x-amzn-errortype"), type);
  assert.match(response.headers.get("content-type"), /json/);
  assert.ok(response.headers.get("x-amzn-requestid"));
  const body = await response.json();
  assert.deepEqual(Object.keys(body).sort(), ["__type", "message"]);
  assert.equal(body.__type, type);
  assert.match(body.message, pattern);
}

await check("malformed requests", async () => {
  const json = { "content-type": "application/json" };
  await raw("/v1/submitjob", { method: "POST", body: "{not json", headers: json }, 400, "ClientException",
    /not valid JSON/);
  await raw("/v1/submitjob", { method: "POST", body: "[1, 2]", headers: json }, 400, "ClientException",
    /JSON object/);
  await raw("/v1/submitjob", { method: "POST", body: new Uint8Array([0x7b, 0xff, 0x7d]), headers: json }, 400,
    "ClientException", /UTF-8/);
  await raw("/v1/submitjob", { method: "POST", body: '{"jobName": NaN}', headers: json }, 400, "ClientException",
    /not valid JSON/);
  await raw("/v1/createjobqueue", { method: "POST", body: JSON.stringify({ jobQueueName: "q", priority: 1e30,
    computeEnvironmentOrder: [] }), headers: json }, 400, "ClientException", /priority/);
  await raw("/v1/createschedulingpolicy", { method: "POST", body: `{"name": "p", "fairsharePolicy": {
    "shareDistribution": [{"shareIdentifier": "a", "weightFactor": 1${"0".repeat(400)}}]}}`, headers: json }, 400,
  "ClientException", /weightFactor' failed to satisfy constraint: Member must be a number/);
  await raw("/v1/submitjob", { method: "POST", body: "[".repeat(100000), headers: json }, 400, "ClientException",
    /.+/);
  await raw("/v1/nosuchoperation", { method: "POST", body: "{}", headers: json }, 404,
    "UnknownOperationException", /nosuchoperation/);
  await raw("/v1/submitjob", { method: "GET" }, 405, "MethodNotAllowedException", /GET/);
  await raw("/", { method: "POST", body: "{not json", headers: { "content-type": "application/x-amz-json-1.1",
    "x-amz-target": "Logs_20140328.GetLogEvents" } }, 400, "InvalidParameterException", /not valid JSON/);
});

await check("delete the queue and the compute environment", async () => {
  await call("UpdateJobQueue", { jobQueue: queueName, state: "DISABLED" });
  await call("DeleteJobQueue", { jobQueue: queueName });
  await until(async () => (await call("DescribeJobQueues", { jobQueues: [queueName] })).jobQueues.length === 0);
  await call("UpdateComputeEnvironment", { computeEnvironment: ceName, state: "DISABLED" });
  await call("DeleteComputeEnvironment", { computeEnvironment: ceName });
  await until(async () => (await call("DescribeComputeEnvironments", { computeEnvironments: [ceName] }))
    .computeEnvironments.length === 0);
});

if (failures.length) {
  for (const failure of failures) console.error(`FAIL ${failure}`);
  process.exit(1);
}
console.log("ok");
