import sys

from adajudge.cli import main

sys.exit(main())
