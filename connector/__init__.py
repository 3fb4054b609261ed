"""dvsync's Dataverse connector: everything that speaks to the Dataverse Web API.

Imports nothing from ``jobs``.
"""

__version__ = "0.1.0"  # before the imports: connector.http reads it for the User-Agent

from connector.changes import ChangePage, Changes
from connector.client import DataverseClient
from connector.errors import (
    AuthError,
    ChangeTokenExpiredError,
    ChangeTrackingDisabledError,
    ConfigError,
    ConvergenceError,
    DataverseError,
    DuplicateRecordError,
    DvsyncError,
    FatalApiError,
    InsufficientDataError,
    InvalidRequestError,
    JobError,
    JobInputError,
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
from connector.metadata import ColumnDefinition, ColumnSpec, TableDefinition, WhoAmI
from connector.settings import Settings
from connector.writeback import UpdateResult

__all__ = [
    "AuthError",
    "ChangePage",
    "ChangeTokenExpiredError",
    "ChangeTrackingDisabledError",
    "Changes",
    "ColumnDefinition",
    "ColumnSpec",
    "ConfigError",
    "ConvergenceError",
    "DataverseClient",
    "DataverseError",
    "DuplicateRecordError",
    "DvsyncError",
    "FatalApiError",
    "InsufficientDataError",
    "InvalidRequestError",
    "JobError",
    "JobInputError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "ProtocolError",
    "RecordError",
    "RecordNotFoundError",
    "RecordValidationError",
    "RetriableError",
    "RetryPolicy",
    "ServiceUnavailableError",
    "Settings",
    "TableDefinition",
    "ThrottleState",
    "ThrottledError",
    "TransportError",
    "UpdateResult",
    "WhoAmI",
    "__version__",
]
