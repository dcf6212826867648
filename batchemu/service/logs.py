"""CloudWatch Logs (awsJson 1.1) operations over the job output the executor records."""

from __future__ import annotations

OPERATIONS: dict = {}
