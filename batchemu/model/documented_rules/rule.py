"""One documented rule of the AWS Batch API: what it says, where it is said, and whether batchemu follows it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

API_REFERENCE = "https://docs.aws.amazon.com/batch/latest/APIReference/"
USER_GUIDE = "https://docs.aws.amazon.com/batch/latest/userguide/"


class Kind(str, Enum):
    """What sort of statement a rule is, as the audit sorts them."""

    RANGE = "range"  # a value's documented minimum/maximum
    REQUIRED_WHEN = "required when"  # a member required (or forbidden) in some case only
    ONE_OF = "only one of"  # members that exclude each other
    PRESENT_WHEN = "present when"  # a response member present (or absent) in some case only
    FILTER = "filter"  # a list filter's forms: wildcard, prefix, default, which statuses
    DEFAULT = "default"  # the value taken when a member is left out
    LIMIT = "limit"  # counts and sizes: tags, names, items per call
    BULK = "bulk"  # what a bulk operation reports as processed or failed
    VALIDATES = "validates"  # which operation checks what (at submit, at register, at run time)
    BEHAVIOUR = "behaviour"  # what happens to a job or resource because of the member


class Status(str, Enum):
    """Whether batchemu follows a rule."""

    ENFORCED = "enforced"  # batchemu does what the rule says, and a test shows it
    RELAXED = "relaxed"  # deliberately looser than the words, because AWS or a real client is (`why` says who)
    NOT_FOLLOWED = "not followed"  # a known difference from AWS (`why` says why), listed in the docs


@dataclass(frozen=True)
class Rule:
    """A rule stated in words by the API reference or user guide.

    `id` is "<Operation or Shape>.<member path>.<what>", unique; `operations` are the operations the rule applies
    to (a shape's rule applies to every operation that takes the shape, as far as the reference says so); `says`
    is the rule in short (the reference's words where a phrase is quoted); `source` is the page, an API reference
    or user guide URL with its anchor when the page has several members; `why` says why a rule is relaxed or not
    followed (empty when enforced)."""

    id: str
    operations: tuple[str, ...]
    kind: Kind
    says: str
    source: str
    status: Status = Status.ENFORCED
    why: str = ""


def api(page: str) -> str:
    """The URL of an API reference page: api("API_SubmitJob") or api("API_JobTimeout")."""
    return f"{API_REFERENCE}{page}.html"


def guide(page: str) -> str:
    """The URL of a user guide page: guide("array_jobs")."""
    return f"{USER_GUIDE}{page}.html"
