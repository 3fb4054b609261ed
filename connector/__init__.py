"""dvsync's Dataverse connector: everything that speaks to the Dataverse Web API.

Imports nothing from ``jobs``: the exception root and the TOML reader it shares with the rest of
dvsync come from :mod:`core`. Its errors are in :mod:`connector.errors`.
"""

from connector.changes import ChangePage, Changes
from connector.client import DataverseClient
from connector.errors import (
    AuthError,
    ChangeTokenExpiredError,
    ChangeTrackingDisabledError,
    DataverseError,
    DuplicateRecordError,
    FatalApiError,
    InvalidRequestError,
    PermissionDeniedError,
    PreconditionFailedError,
    ProtocolError,
    RecordError,
    RecordNotFoundError,
    RecordValidationError,
    RetriableError,
    ServiceUnavailableError,
    ThrottledError,
    TransportError,
)
from connector.http import RetryPolicy, ThrottleState
from connector.merge import MergeOutcome
from connector.metadata import ColumnDefinition, ColumnSpec, TableDefinition, WhoAmI
from connector.queues import QueueItem, QueueRequest, QueueResult
from connector.settings import AuthSettings, ConnectionSettings, DataverseSettings, HttpSettings
from connector.writeback import UpdateResult
from core.version import __version__

__all__ = [
    "AuthError",
    "AuthSettings",
    "ChangePage",
    "ChangeTokenExpiredError",
    "ChangeTrackingDisabledError",
    "Changes",
    "ColumnDefinition",
    "ColumnSpec",
    "ConnectionSettings",
    "DataverseClient",
    "DataverseError",
    "DataverseSettings",
    "DuplicateRecordError",
    "FatalApiError",
    "HttpSettings",
    "InvalidRequestError",
    "MergeOutcome",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "ProtocolError",
    "QueueItem",
    "QueueRequest",
    "QueueResult",
    "RecordError",
    "RecordNotFoundError",
    "RecordValidationError",
    "RetriableError",
    "RetryPolicy",
    "ServiceUnavailableError",
    "TableDefinition",
    "ThrottleState",
    "ThrottledError",
    "TransportError",
    "UpdateResult",
    "WhoAmI",
    "__version__",
]
