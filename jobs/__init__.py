"""Batch jobs: the command-line entry points."""
