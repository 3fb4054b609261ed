"""Open the Dataverse client that dvsync's settings describe."""

from __future__ import annotations

from connector.client import DataverseClient
from connector.http import RetryPolicy
from jobs.service.settings import Settings

__all__ = ["connect"]


def connect(settings: Settings, *, retry: RetryPolicy | None = None) -> DataverseClient:
    """Return a client for ``settings``: its connection sections and ``writeback.max_parallel``."""
    return DataverseClient.from_settings(settings, retry=retry, max_parallel=settings.writeback.max_parallel)
