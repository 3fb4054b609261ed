"""A local Dataverse-compatible server with realistic seed data, for demos and integration tests.

Start it with ``dvsync sandbox`` or, in-process::

    from connector.sandbox import Sandbox

    with Sandbox("/tmp/sandbox-data") as sandbox:
        print(sandbox.api_url, sandbox.token)

It imports nothing from the connector's request-building modules: it follows Microsoft's
documents, not our client's assumptions. See ``docs/sandbox.md``.
"""

from connector.sandbox.config import Limits, SandboxConfig
from connector.sandbox.faults import FaultConfig
from connector.sandbox.server import Sandbox

__all__ = ["FaultConfig", "Limits", "Sandbox", "SandboxConfig"]
