"""The admin console: a web page over the mirror where a CRM admin sees every run and result and acts.

It sits beside :mod:`jobs.cli` (both are front ends of :mod:`jobs.service`): it may import the
service and the analytics, never the other way round. :func:`jobs.console.app.start_console` is
the entry point; ``dvsync console`` and ``dvsync schedule --console`` call it.
"""

__all__ = [
    "actions",
    "app",
    "auth",
    "charts",
    "context",
    "data_config",
    "data_duplicates",
    "data_results",
    "data_runs",
    "html",
    "pages",
    "pages_results",
    "server",
    "view",
]
