"""`python -m surge_loadgen ...`: see surge_loadgen.cli."""

import sys

from surge_loadgen.cli import main

sys.exit(main())
