"""The SQLite schema of a state file, and the migrations that bring a file written by an earlier version up to it
(keeping every job)."""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    arn TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_by_kind ON resources (kind, seq);
CREATE INDEX IF NOT EXISTS resources_by_name ON resources (kind, name);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    job_queue_arn TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    job_name TEXT NOT NULL,
    job_definition_arn TEXT NOT NULL,
    parent_id TEXT,
    array_index INTEGER,
    array_size INTEGER,          -- set on array parents only
    entered_at INTEGER NOT NULL, -- when the job entered its status
    status_reason TEXT,
    started_at INTEGER,
    stopped_at INTEGER,
    is_cancelled INTEGER NOT NULL DEFAULT 0,
    is_terminated INTEGER NOT NULL DEFAULT 0,
    intent TEXT,                 -- 'cancel' or 'terminate', recorded by the API, carried out by the scheduler
    intent_reason TEXT,
    platform TEXT NOT NULL DEFAULT 'EC2',
    vcpus REAL NOT NULL DEFAULT 1,
    memory INTEGER,
    gpus INTEGER NOT NULL DEFAULT 0,
    share_identifier TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    consumables TEXT,            -- JSON {resource ARN: quantity}
    compute_environment TEXT,    -- of the current attempt
    has_doc INTEGER NOT NULL DEFAULT 1,  -- 0: an array child never started, described from its parent
    -- Small columns first: SQLite walks a big value's overflow pages to reach the columns after it.
    summary TEXT NOT NULL,
    wire TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_queue ON jobs (job_queue_arn, status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_parent ON jobs (parent_id, status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_by_share ON jobs (job_queue_arn, status, share_identifier, priority, seq);
CREATE INDEX IF NOT EXISTS jobs_array_parents ON jobs (status) WHERE array_size IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_nodes ON jobs (status, seq) WHERE parent_id IS NOT NULL AND array_index IS NULL;
-- On seq, so that each pass's "oldest intents first" reads this index, not every job in seq order.
DROP INDEX IF EXISTS jobs_with_intent;
CREATE INDEX IF NOT EXISTS jobs_with_intent_by_seq ON jobs (seq) WHERE intent IS NOT NULL;
CREATE TABLE IF NOT EXISTS job_dependencies (
    job_id TEXT NOT NULL,        -- the job that waits
    depends_on TEXT NOT NULL,    -- the job it waits for
    type TEXT,                   -- NULL (plain), N_TO_N or SEQUENTIAL
    PRIMARY KEY (job_id, depends_on)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_dependencies_by_target ON job_dependencies (depends_on);
CREATE TABLE IF NOT EXISTS attempts (
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,      -- 1-based, AWS_BATCH_JOB_ATTEMPT
    phase TEXT NOT NULL,           -- attempts.PHASES: PLACED, STARTED, EXITED, START_FAILED, REQUEUED, ENDED
    compute_environment TEXT,
    container_id TEXT,
    began_at INTEGER NOT NULL,
    ended_at INTEGER,
    exit_code INTEGER,             -- what the engine reported when the container stopped
    oom_killed INTEGER NOT NULL DEFAULT 0,
    engine_error TEXT,             -- an end with no exit code (the engine lost the container)
    start_error TEXT,              -- AWS's reason for a container that could not start
    stop_sent_at INTEGER,          -- last stop asked of the engine (sent again until the container exits)
    timed_out INTEGER NOT NULL DEFAULT 0,
    containers TEXT,               -- JSON [{name, exitCode, reason, containerId}]: each container's end
    PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS service_jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    job_queue_arn TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    job_name TEXT NOT NULL,
    share_identifier TEXT,
    quota_share_name TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS service_jobs_by_queue ON service_jobs (job_queue_arn, status, seq);
CREATE INDEX IF NOT EXISTS service_jobs_by_status ON service_jobs (status, seq);
CREATE TABLE IF NOT EXISTS share_usage (
    job_queue_arn TEXT NOT NULL,
    share_identifier TEXT NOT NULL,
    vcpu_seconds REAL NOT NULL,  -- decayed usage of finished attempts, as of updated_at
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (job_queue_arn, share_identifier)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_streams (
    group_name TEXT NOT NULL,
    stream_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (group_name, stream_name)
);
CREATE TABLE IF NOT EXISTS log_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT NOT NULL,
    stream_name TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    ingestion_time INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_events_by_stream ON log_events (group_name, stream_name, seq);
CREATE TABLE IF NOT EXISTS capacity_samples (
    compute_environment TEXT NOT NULL,
    at INTEGER NOT NULL,           -- epoch ms of the sample
    vcpus_in_use REAL NOT NULL,    -- of its STARTING and RUNNING jobs
    desired_vcpus INTEGER,         -- NULL where Batch does not manage it (unmanaged, Fargate)
    PRIMARY KEY (compute_environment, at)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS capacity_samples_by_time ON capacity_samples (at);
-- The event outbox (event_outbox.py): AUTOINCREMENT, so a sequence is never given twice, pruned rows included.
CREATE TABLE IF NOT EXISTS job_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL DEFAULT (lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'
        || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (random() & 3), 1)
        || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))),  -- the event's id, a UUID v4
    kind TEXT NOT NULL,          -- 'job' (detail: the JobDetail on the wire) or 'service-job' (its document)
    blocked INTEGER NOT NULL,    -- 1: a waiting job given a blocking reason, 0: a status change
    job_id TEXT NOT NULL,
    job_queue_arn TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    at INTEGER NOT NULL,         -- epoch ms
    detail TEXT,                 -- NULL: in the next event, or an array child without a document (described
                                 -- from its parent when read)
    detail_in_next INTEGER NOT NULL DEFAULT 0  -- 1: the detail of the next event, with this one's status
);
CREATE INDEX IF NOT EXISTS job_events_by_queue ON job_events (job_queue_arn, seq);
"""


# Fills the new columns of a store written by an earlier version from each job's document.
_MIGRATE_V1 = """
INSERT INTO jobs (seq, job_id, job_queue_arn, status, created_at, job_name, job_definition_arn, parent_id,
    entered_at, status_reason, started_at, stopped_at, is_cancelled, is_terminated, intent, intent_reason,
    platform, vcpus, memory, share_identifier, priority, compute_environment, summary, wire, doc)
SELECT seq, job_id, job_queue_arn, status, created_at, job_name, job_definition_arn, parent_id,
    COALESCE(json_extract(doc, '$.batchemu.transitions[#-1][1]'), created_at),
    json_extract(doc, '$.statusReason'), json_extract(doc, '$.startedAt'), json_extract(doc, '$.stoppedAt'),
    COALESCE(json_extract(doc, '$.isCancelled'), 0), COALESCE(json_extract(doc, '$.isTerminated'), 0),
    CASE WHEN status IN ('STARTING', 'RUNNING') AND json_extract(doc, '$.batchemu.terminateReason') IS NOT NULL
         THEN 'terminate' END,
    json_extract(doc, '$.batchemu.terminateReason'),
    COALESCE(json_extract(doc, '$.batchemu.platform'), 'EC2'), COALESCE(json_extract(doc, '$.batchemu.vcpus'), 1),
    json_extract(doc, '$.batchemu.memoryMib'), json_extract(doc, '$.shareIdentifier'),
    COALESCE(json_extract(doc, '$.schedulingPriority'), 0), json_extract(doc, '$.batchemu.computeEnvironment'),
    summary, wire, doc
FROM jobs_v1;
INSERT OR IGNORE INTO job_dependencies (job_id, depends_on, type)
SELECT jobs_v1.job_id, json_extract(d.value, '$.jobId'), json_extract(d.value, '$.type')
FROM jobs_v1, json_each(jobs_v1.doc, '$.dependsOn') AS d WHERE json_extract(d.value, '$.jobId') IS NOT NULL;
DROP TABLE jobs_v1;
"""


# Attempts on hosts of a store written before the attempts table, from each job's document.
_MIGRATE_ATTEMPTS = """
INSERT OR IGNORE INTO attempts (job_id, attempt, phase, compute_environment, container_id, began_at, exit_code,
    oom_killed, engine_error, start_error, timed_out)
SELECT job_id, json_extract(doc, '$.batchemu.attempt'),
    CASE WHEN json_extract(doc, '$.batchemu.requeue') THEN 'REQUEUED'
         WHEN json_extract(doc, '$.batchemu.startError') IS NOT NULL THEN 'START_FAILED'
         WHEN json_extract(doc, '$.batchemu.exit') IS NOT NULL THEN 'EXITED'
         WHEN json_extract(doc, '$.batchemu.containerId') IS NOT NULL THEN 'STARTED'
         ELSE 'PLACED' END,
    json_extract(doc, '$.batchemu.computeEnvironment'), json_extract(doc, '$.batchemu.containerId'), entered_at,
    json_extract(doc, '$.batchemu.exit.exit_code'), COALESCE(json_extract(doc, '$.batchemu.exit.oom_killed'), 0),
    json_extract(doc, '$.batchemu.exit.error'), json_extract(doc, '$.batchemu.startError'),
    COALESCE(json_extract(doc, '$.batchemu.timedOut'), 0)
FROM jobs WHERE status IN ('STARTING', 'RUNNING') AND has_doc = 1
"""


# ListJobs summaries stored before they carried isCancelled and isTerminated only when true (API_JobSummary)
# lose the false ones; summaries are compact JSON, so the LIKE finds exactly those.
_ONLY_WHEN_TRUE = [f"""UPDATE jobs SET summary = json_remove(summary, '$.{key}')
    WHERE summary LIKE '%"{key}":false%' AND json_type(summary, '$.{key}') = 'false'"""
                   for key in ("isCancelled", "isTerminated")]


def bring_up_to_date(conn: sqlite3.Connection) -> None:
    """Create the tables of SCHEMA that are missing, first moving the jobs of an earlier version's file into
    them (and their attempts on hosts into the attempts table)."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    pending_attempts = bool(columns) and not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'attempts'").fetchone()
    if columns and "has_doc" not in columns:
        _migrate_v1(conn)
    conn.executescript(SCHEMA)
    if pending_attempts:
        conn.execute(_MIGRATE_ATTEMPTS)
    if "containers" not in {r[1] for r in conn.execute("PRAGMA table_info(attempts)")}:
        conn.execute("ALTER TABLE attempts ADD COLUMN containers TEXT")
    for statement in _ONLY_WHEN_TRUE:
        conn.execute(statement)


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Jobs as documents only (the first version) become rows with indexed columns and dependency edges."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for index in ("jobs_by_queue", "jobs_by_parent", "jobs_by_status"):
            conn.execute(f"DROP INDEX IF EXISTS {index}")
        conn.execute("ALTER TABLE jobs RENAME TO jobs_v1")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        for statement in _MIGRATE_V1.split(";"):
            if statement.strip():
                conn.execute(statement)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
