"""jobsim's applications: command line, local database, evaluation tool."""
