"""Processes that execute jobs: the leased worker, its supervisor, and the scheduler process."""
