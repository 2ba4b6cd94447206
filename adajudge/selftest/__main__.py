"""`python -m adajudge.selftest` (see `adajudge.selftest`)."""
import sys

from adajudge.selftest.cli import main

sys.exit(main())
