"""The retryStrategy rules of the API reference (RetryStrategy, EvaluateOnExit), checked alike on
RegisterJobDefinition and on SubmitJob, which takes the same shape and overrides the definition's."""

from __future__ import annotations

import copy
import re

from batchemu.model.containers import invalid_definition as _invalid

MIN_ATTEMPTS, MAX_ATTEMPTS = 1, 10
MAX_EVALUATE_ON_EXIT = 5
MAX_PATTERN = 512
REASON_PATTERN = re.compile(r"[A-Za-z0-9.:\s]*\*?")
EXIT_CODE_PATTERN = re.compile(r"[0-9]*\*?")


def check_retry_strategy(strategy: dict) -> dict:
    """A copy of `strategy` once it keeps AWS's rules: attempts given and between 1 and 10, at most 5
    evaluateOnExit conditions, each with a pattern of at most 512 characters in the documented alphabet."""
    attempts = strategy.get("attempts")
    if attempts is None:
        raise _invalid("RetryAttempts must be provided with retry strategy")
    if not MIN_ATTEMPTS <= attempts <= MAX_ATTEMPTS:
        raise _invalid(f"Retry attempts should be between {MIN_ATTEMPTS} and {MAX_ATTEMPTS}.")
    rules = strategy.get("evaluateOnExit") or []
    if len(rules) > MAX_EVALUATE_ON_EXIT:
        raise _invalid(f"evaluateOnExit can contain at most {MAX_EVALUATE_ON_EXIT} conditions.")
    for rule in rules:
        patterns = {k: rule[k] for k in ("onStatusReason", "onReason", "onExitCode") if rule.get(k) is not None}
        if not patterns:
            raise _invalid("evaluateOnExit conditions must specify onStatusReason, onReason or onExitCode.")
        for key, pattern in patterns.items():
            allowed = EXIT_CODE_PATTERN if key == "onExitCode" else REASON_PATTERN
            if len(pattern) > MAX_PATTERN or not allowed.fullmatch(pattern):
                raise _invalid(f"Invalid {key} pattern {pattern}.")
    return copy.deepcopy(strategy)
