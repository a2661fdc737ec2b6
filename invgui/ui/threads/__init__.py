"""The threads: the run worker and its controller, the background jobs."""
