"""Random identifiers (job ids, request ids) without a system call each.

uuid.uuid4() reads os.urandom, which lets go of the GIL: on a busy server each request then waits for the GIL
again, up to the interpreter's switch interval, two or three times per SubmitJob. Ids only need to be unique,
so they come from a generator of this module's own, seeded from os.urandom at start and again in a forked
child (random.seed() elsewhere in the process, e.g. in a test suite the pytest plugin runs in, cannot touch it).
"""

from __future__ import annotations

import os
import random
import uuid

_generator = random.Random(os.urandom(32))


def _reseed() -> None:
    _generator.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def uuid4() -> uuid.UUID:
    """A random (version 4) UUID."""
    return uuid.UUID(int=_generator.getrandbits(128), version=4)


def uuid4_str() -> str:
    return str(uuid4())
