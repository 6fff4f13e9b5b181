import sys

from jobsim_app.cli import main

sys.exit(main())
