import sys

from jobsim.cli import main

sys.exit(main())
