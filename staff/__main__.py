"""`python -m staff`: the staff console and its command line (see staff/cli.py)."""

import sys

from staff.cli import main

sys.exit(main())
