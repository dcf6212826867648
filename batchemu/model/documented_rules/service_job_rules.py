"""Documented rules of consumable resources, service environments, service jobs (SageMaker training jobs through
Batch) and tagging."""

from __future__ import annotations

from batchemu.model.documented_rules.rule import Rule

SERVICE_JOB_RULES: tuple[Rule, ...] = ()
