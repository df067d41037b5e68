"""Rounds: every pending submission evaluated as Ray tasks, with retries, resume and progress."""
