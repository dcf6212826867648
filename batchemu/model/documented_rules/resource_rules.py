"""Documented rules of the resource operations: compute environments, job queues, scheduling policies and quota
shares."""

from __future__ import annotations

from batchemu.model.documented_rules.rule import Rule

RESOURCE_RULES: tuple[Rule, ...] = ()
