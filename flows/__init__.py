"""Prefect flows: each only orders the steps."""
