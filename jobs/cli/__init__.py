"""The ``dvsync`` command: one thin module per subcommand that parses, calls the service, renders.

``main`` holds the command table and the entry point (``dvsync = "jobs.cli.main:main"``);
``common`` and ``render`` print tables, JSON and progress; ``walkthrough`` is the demo's narrated
run against the sandbox; every other module is the subcommand of its name.
"""

__all__ = [
    "check",
    "common",
    "demo",
    "main",
    "provision",
    "render",
    "rollback",
    "run",
    "schedule",
    "status",
    "sync",
    "walkthrough",
]
