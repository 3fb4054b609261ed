"""The analytics' errors: why a job could not produce a result that is safe to write back.

Raised by the pure analytics in :mod:`jobs.leads` and :mod:`jobs.customers`; the service reports
them per job and writes nothing from a job that raised one. All are :class:`core.errors.DvsyncError`.
"""

from __future__ import annotations

from core.errors import DvsyncError

__all__ = ["ConvergenceError", "InsufficientDataError", "JobError", "JobInputError"]


class JobError(DvsyncError):
    """An analytics job cannot produce a result that is safe to write back."""


class JobInputError(JobError, ValueError):
    """A job was called with a value it cannot use; the message names the argument and the fix.

    Also a ``ValueError``, so Python callers that catch the conventional type keep working, while
    the CLI, which reports every ``DvsyncError`` cleanly, never shows a stack trace for it.
    """


class InsufficientDataError(JobError):
    """Too few rows of some kind for the requested model; the message says how many were found."""


class ConvergenceError(JobError):
    """A model fit did not converge; the message says what to try."""
