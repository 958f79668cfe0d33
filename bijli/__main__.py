"""``python -m bijli``: the same as the ``bijli`` command."""

import sys

from bijli.tools.cli import main

sys.exit(main())
