"""``python -m lensblur``: the same command as ``lensblur``."""

import sys

from .cli import main

sys.exit(main())
