"""`python -m surge` -> the command line."""

import sys

from surge.cli import main

sys.exit(main())
