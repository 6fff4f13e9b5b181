"""jobsim: keeps a "similar jobs" list fresh for every job posting in MongoDB."""

__version__ = "0.1.0"
