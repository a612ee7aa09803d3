"""``python -m boundlab``: the same command line as the ``boundlab`` script."""

import sys

from .cli import main

sys.exit(main())
