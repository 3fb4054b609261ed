"""dvsync's Dataverse connector: everything that speaks to the Dataverse Web API.

Imports nothing from ``jobs``.
"""

from connector.errors import (
    AuthError,
    ChangeTokenExpiredError,
    ChangeTrackingDisabledError,
    ConfigError,
    ConvergenceError,
    DataverseError,
    DvsyncError,
    FatalApiError,
    InsufficientDataError,
    JobError,
    PreconditionFailedError,
    ProtocolError,
    RecordError,
    RecordNotFoundError,
    RetriableError,
    ServiceUnavailableError,
    ThrottledError,
    TransportError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "ChangeTokenExpiredError",
    "ChangeTrackingDisabledError",
    "ConfigError",
    "ConvergenceError",
    "DataverseError",
    "DvsyncError",
    "FatalApiError",
    "InsufficientDataError",
    "JobError",
    "PreconditionFailedError",
    "ProtocolError",
    "RecordError",
    "RecordNotFoundError",
    "RetriableError",
    "ServiceUnavailableError",
    "ThrottledError",
    "TransportError",
    "__version__",
]
