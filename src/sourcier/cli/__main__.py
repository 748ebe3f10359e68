"""``python -m sourcier.cli``."""

import sys

from .commands import main

sys.exit(main())
