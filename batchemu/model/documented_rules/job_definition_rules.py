"""Documented rules of the job definition operations (RegisterJobDefinition, DescribeJobDefinitions,
DeregisterJobDefinition) and of the shapes a job definition and SubmitJob's overrides share: container, ECS and
EKS properties, node properties, resource requirements, Linux parameters, volumes and mounts, secrets, logging."""

from __future__ import annotations

from batchemu.model.documented_rules.rule import Rule

JOB_DEFINITION_RULES: tuple[Rule, ...] = ()
