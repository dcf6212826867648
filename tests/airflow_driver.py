"""Runs one Airflow Amazon-provider Batch task in Airflow's own interpreter, for tests/test_airflow.py.

Not a test module: `.clients/airflow/bin/python tests/airflow_driver.py` reads one JSON request on stdin,

    {"task": "BatchOperator" | "BatchSensor", "kwargs": {...}, "delay_max": 0.2}

calls the task's execute() the way a worker would (no metadata database: the task instance in the context
only records the XComs the task pushes), and writes JSON lines on stdout: {"poke": bool} after every
sensor poke, then {"ok": bool, "value": ..., "error": {"type", "message"}, "xcom": {...}}. The task's
own log (including the CloudWatch lines it forwards) goes to stderr.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from datetime import timedelta

# Airflow's structured logging writes to stdout: keep the real stdout for the result lines alone.
RESULTS = os.fdopen(os.dup(sys.stdout.fileno()), "w")
os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def emit(record: dict) -> None:
    RESULTS.write(json.dumps(record, default=str) + "\n")
    RESULTS.flush()


class RecordingTaskInstance:
    """Stands in for the task instance in the context: the operators push their console links as XComs."""

    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


def build(task: str, kwargs: dict):
    from airflow.providers.amazon.aws.operators.batch import BatchOperator
    from airflow.providers.amazon.aws.sensors.batch import BatchSensor

    if task == "BatchOperator":
        if "awslogs_fetch_interval" in kwargs:
            kwargs["awslogs_fetch_interval"] = timedelta(seconds=kwargs["awslogs_fetch_interval"])
        return BatchOperator(task_id="batch", **kwargs)
    if task == "BatchSensor":
        sensor = BatchSensor(task_id="sensor", **kwargs)
        poke = sensor.poke

        def reporting_poke(context):
            done = poke(context)
            emit({"poke": bool(done)})
            return done

        sensor.poke = reporting_poke
        return sensor
    raise SystemExit(f"unknown task {task!r}")


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    request = json.loads(sys.stdin.readline())
    from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook

    # The hook's documented knob for its random pause before each status poll (1 to 10 s by default).
    BatchClientHook.DEFAULT_DELAY_MIN = 0
    BatchClientHook.DEFAULT_DELAY_MAX = request.get("delay_max", 0.2)
    task = build(request["task"], request.get("kwargs", {}))
    ti = RecordingTaskInstance()
    # As Airflow's task runner calls execute(): in a context copy that tells the operator it is the task.
    from airflow.sdk.bases.operator import ExecutorSafeguard
    run = contextvars.copy_context()
    run.run(ExecutorSafeguard.tracker.set, task)
    try:
        value = run.run(task.execute, context={"ti": ti})
    except Exception as error:  # noqa: BLE001 - the test asserts on its type and message
        emit({"ok": False, "error": {"type": type(error).__name__, "message": str(error)}, "xcom": ti.xcom})
        return
    emit({"ok": True, "value": value, "xcom": ti.xcom})


if __name__ == "__main__":
    main()
