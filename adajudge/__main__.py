from adajudge.cli import main
import sys

sys.exit(main())
