"""Documented rules of the resource operations: compute environments, job queues, scheduling policies, quota
shares, consumable resources, service environments, service jobs, and tagging."""

from __future__ import annotations

from batchemu.model.documented_rules.rule import Rule

RESOURCE_RULES: tuple[Rule, ...] = ()
