"""`python -m batchemu` is the same as the `batchemu` command."""

import sys

from batchemu.cli import main

sys.exit(main())
