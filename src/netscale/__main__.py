"""`python -m netscale` (also what `torchrun -m netscale train ...` runs)."""

import sys

from netscale.cli.main import main

sys.exit(main())
