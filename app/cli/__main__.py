"""``python -m app.cli``: the ``cots`` command (tests and benchmarks run a checkout this way)."""
import sys

from app.cli import main

sys.exit(main())
