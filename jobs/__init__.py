"""dvsync's jobs: the mirror, the analytics, the pipeline, the schedule and the CLI."""
