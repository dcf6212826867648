// Drives batchemu with the AWS SDK for JavaScript v3, which parses responses more strictly than botocore.
// Usage: node batch_check.mjs ENDPOINT IMAGE   (prints "ok" and exits 0, or throws)
import {
  BatchClient, CreateComputeEnvironmentCommand, DescribeComputeEnvironmentsCommand, CreateJobQueueCommand,
  DescribeJobQueuesCommand, RegisterJobDefinitionCommand, SubmitJobCommand, DescribeJobsCommand,
  ListJobsCommand, TerminateJobCommand, ListTagsForResourceCommand, TagResourceCommand,
  CreateServiceEnvironmentCommand,
} from "@aws-sdk/client-batch";
import { CloudWatchLogsClient, GetLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import assert from "node:assert/strict";

const [endpoint, image] = process.argv.slice(2);
const config = { endpoint, region: "us-east-1", credentials: { accessKeyId: "x", secretAccessKey: "x" },
                 maxAttempts: 1 };
const batch = new BatchClient(config);
const logs = new CloudWatchLogsClient(config);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const suffix = Math.random().toString(36).slice(2, 8);

async function until(fn, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(100);
  }
}

const ce = await batch.send(new CreateComputeEnvironmentCommand({
  computeEnvironmentName: `js-ce-${suffix}`, type: "MANAGED",
  computeResources: { type: "EC2", maxvCpus: 2, subnets: ["subnet-1"], securityGroupIds: ["sg-1"],
                      instanceRole: "ecsInstanceRole", instanceTypes: ["optimal"] } }));
assert.match(ce.computeEnvironmentArn, /^arn:aws:batch:us-east-1:123456789012:compute-environment\//);
await until(async () => (await batch.send(new DescribeComputeEnvironmentsCommand({
  computeEnvironments: [ce.computeEnvironmentArn] }))).computeEnvironments[0].status === "VALID");
const queue = await batch.send(new CreateJobQueueCommand({ jobQueueName: `js-q-${suffix}`, priority: 1,
  computeEnvironmentOrder: [{ order: 1, computeEnvironment: ce.computeEnvironmentArn }] }));
await until(async () => (await batch.send(new DescribeJobQueuesCommand({ jobQueues: [queue.jobQueueArn] })))
  .jobQueues[0].status === "VALID");
const definition = await batch.send(new RegisterJobDefinitionCommand({
  jobDefinitionName: `js-jd-${suffix}`, type: "container",
  containerProperties: { image, command: ["sh", "-c", "echo hello from js; exit 3"],
    resourceRequirements: [{ type: "VCPU", value: "1" }, { type: "MEMORY", value: "32" }] } }));
assert.equal(definition.revision, 1);

const submitted = await batch.send(new SubmitJobCommand({ jobName: "js-job", jobQueue: queue.jobQueueName,
  jobDefinition: definition.jobDefinitionArn, tags: { team: "js" } }));
const job = await until(async () => {
  const [found] = (await batch.send(new DescribeJobsCommand({ jobs: [submitted.jobId] }))).jobs;
  return ["SUCCEEDED", "FAILED"].includes(found.status) ? found : null;
});
assert.equal(job.status, "FAILED");
assert.equal(job.statusReason, "Essential container in task exited");
assert.equal(job.container.exitCode, 3);
for (const field of ["createdAt", "startedAt", "stoppedAt"]) assert.equal(typeof job[field], "number", field);
assert.ok(job.createdAt <= job.startedAt && job.startedAt <= job.stoppedAt);
assert.equal(job.attempts.length, 1);

const events = await until(async () => (await logs.send(new GetLogEventsCommand({
  logGroupName: "/aws/batch/job", logStreamName: job.container.logStreamName, startFromHead: true }))).events
  .map((e) => e.message).filter(Boolean).length ? (await logs.send(new GetLogEventsCommand({
  logGroupName: "/aws/batch/job", logStreamName: job.container.logStreamName, startFromHead: true }))).events
  : null, 10000);
assert.deepEqual(events.map((e) => e.message), ["hello from js"]);
assert.equal(typeof events[0].timestamp, "number");

const listed = await batch.send(new ListJobsCommand({ jobQueue: queue.jobQueueArn,
  filters: [{ name: "JOB_NAME", values: ["js-*"] }] }));
assert.deepEqual(listed.jobSummaryList.map((s) => s.jobId), [submitted.jobId]);
assert.equal(listed.jobSummaryList[0].container.exitCode, 3);

await batch.send(new TagResourceCommand({ resourceArn: definition.jobDefinitionArn, tags: { k: "v" } }));
const tags = await batch.send(new ListTagsForResourceCommand({ resourceArn: definition.jobDefinitionArn }));
assert.deepEqual(tags.tags, { k: "v" });

assert.deepEqual((await batch.send(new DescribeJobsCommand({ jobs: ["no-such-job"] }))).jobs, []);

await assert.rejects(batch.send(new TerminateJobCommand({ jobId: "no-such-job", reason: "x" })), (err) => {
  assert.equal(err.name, "ClientException");
  assert.equal(err.$metadata.httpStatusCode, 400);
  assert.ok(err.message.length > 0);
  return true;
});
await assert.rejects(batch.send(new CreateServiceEnvironmentCommand({ serviceEnvironmentName: "x",
  serviceEnvironmentType: "SAGEMAKER_TRAINING", capacityLimits: [] })), (err) => {
  assert.equal(err.$metadata.httpStatusCode, 501);
  assert.match(err.message, /CreateServiceEnvironment/);
  return true;
});

const raw = await fetch(`${endpoint}/v1/submitjob`, { method: "POST", body: "{not json",
  headers: { "content-type": "application/json" } });
assert.equal(raw.status, 400);
assert.equal(raw.headers.get("x-amzn-errortype"), "ClientException");
const body = await raw.json();
assert.equal(body.__type, "ClientException");
console.log("ok");
