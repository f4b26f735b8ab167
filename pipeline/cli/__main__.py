"""``python -m ikou.pipeline.cli``: the ``ikou`` command."""

import sys

from ikou.pipeline.cli import main

sys.exit(main())
