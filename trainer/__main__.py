import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see app/cli.py

from trainer.cli import main  # noqa: E402

sys.exit(main())
