"""dvsync's jobs: the mirror, the analytics, the pipeline, the schedule and the CLI.

The public surface is these modules, imported by name (``from jobs.rfm import score_rfm``). They
are not re-exported here because importing them pulls in pandas, scipy and scikit-learn, and every
``dvsync`` command (``dvsync --help`` included) imports this package first.

- Analytics, pure DataFrame functions: ``scoring``, ``duplicates``, ``clustering``, ``rfm``,
  ``clv``, ``customer_value``.
- The service: ``mirror``, ``sync``, ``compute``, ``plan``, ``pipeline``, ``rollback``,
  ``schedule``, ``status``, ``check``, ``provision``, ``demo``; the command line: ``cli``.
"""

__all__ = [
    "check",
    "cli",
    "clustering",
    "clv",
    "compute",
    "customer_value",
    "demo",
    "duplicates",
    "mirror",
    "pipeline",
    "plan",
    "provision",
    "rfm",
    "rollback",
    "schedule",
    "scoring",
    "status",
    "sync",
]
