"""``python -m lmbff.cli``."""

import sys

from . import main

sys.exit(main())
