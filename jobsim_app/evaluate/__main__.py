"""``python -m jobsim_app.evaluate``."""

import sys

from jobsim_app.evaluate.cli import main

sys.exit(main())
