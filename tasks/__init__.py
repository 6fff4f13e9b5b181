"""Thin Prefect tasks around jobsim's plain stage functions."""
