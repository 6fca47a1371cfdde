"""`python -m hub`: the `omnihub` command."""

import sys

from hub.cli import main

sys.exit(main())
