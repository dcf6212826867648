"""The rules the AWS Batch API reference and user guide state in words, beyond botocore's shapes, as data.

botocore's model carries types, lengths, enums and required members, and batchemu's parser holds them (with
the few AWS itself does not enforce in `batchemu.protocol.parser.RELAXED`). What the reference says only in a
sentence (a value range, "required when", "only present when", a filter's wildcard form, a default, a limit,
what a bulk operation counts as done) is listed here, one `Rule` per statement, with its source. Each rule says
whether batchemu follows it; `tests/test_documented_rules.py` fails when a rule has no test that names it
(`@pytest.mark.rule("<id>")` in tests/ or conformance/), and the documentation's "Known differences" page lists
the ones it does not follow, with why.
"""

from __future__ import annotations

from batchemu.model.documented_rules.job_definition_rules import JOB_DEFINITION_RULES
from batchemu.model.documented_rules.job_rules import JOB_RULES
from batchemu.model.documented_rules.resource_rules import RESOURCE_RULES
from batchemu.model.documented_rules.rule import Kind, Rule, Status, api, guide
from batchemu.model.documented_rules.service_job_rules import SERVICE_JOB_RULES

RULES: tuple[Rule, ...] = (*JOB_RULES, *JOB_DEFINITION_RULES, *RESOURCE_RULES, *SERVICE_JOB_RULES)

__all__ = ["RULES", "Kind", "Rule", "Status", "api", "by_id", "guide"]


def by_id() -> dict[str, Rule]:
    """Every rule by its id (ids are unique: tests/test_documented_rules.py checks it)."""
    return {rule.id: rule for rule in RULES}
