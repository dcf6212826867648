"""Job and request ids: version 4 UUIDs that a random.seed() elsewhere in the process cannot repeat."""

from __future__ import annotations

import random
import uuid

from batchemu import ids


def test_ids_are_version_4_uuids_and_a_seeded_random_module_does_not_repeat_them():
    random.seed(7)
    first = [ids.uuid4_str() for _ in range(3)]
    random.seed(7)
    second = [ids.uuid4_str() for _ in range(3)]
    assert len(set(first + second)) == 6
    parsed = uuid.UUID(first[0])
    assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, first[0])
