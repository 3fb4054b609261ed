"""The sandbox's security model, as much of it as a privilege check needs.

The sandbox's one user (the token's application user) holds every privilege, as a System
Administrator would, except those listed in ``SandboxConfig.denied_privileges``: a test removes
``prvWriteLead`` there to see ``dvsync check`` name it. Served:

``GET systemusers(<id>)/Microsoft.Dynamics.CRM.RetrieveUserSetOfPrivilegesByNames(PrivilegeNames=@p)``
with ``?@p=[...]`` answers with the named privileges the user holds, in Dataverse's
``RolePrivileges`` shape (names the user does not hold are simply absent, as Dataverse does).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection
from urllib.parse import parse_qsl

from connector.sandbox.faults import ApiError
from connector.sandbox.protocol import Request, Response, json_response
from connector.sandbox.schema import BUSINESS_UNIT_ID, USER_ID

__all__ = ["FUNCTION", "user_privileges"]

FUNCTION = "Microsoft.Dynamics.CRM.RetrieveUserSetOfPrivilegesByNames"
_PATH = re.compile(r"systemusers\((?P<id>[0-9a-fA-F-]{36})\)/" + re.escape(FUNCTION) + r"\((?P<args>.*)\)$")
_PRIVILEGE_NS = uuid.UUID("5b0c6f0e-8a43-4a55-9d8c-6d1f8f2f7a10")


def user_privileges(req: Request, path: str, denied_privileges: Collection[str]) -> Response:
    """Answer ``RetrieveUserSetOfPrivilegesByNames`` for the sandbox's user (all but ``denied``)."""
    if req.method != "GET":
        raise ApiError(405, "0x0", f"{FUNCTION} is a function: use GET.")
    match = _PATH.match(path)
    if match is None:
        raise ApiError(404, "0x8006088a", f"Resource not found for the segment '{path}'.")
    if match.group("id").lower() != USER_ID:
        raise ApiError(404, "0x80040217", f"systemuser With Id = {match.group('id')} Does Not Exist")
    names = _names(match.group("args"), req.query)
    denied = {n.lower() for n in denied_privileges}
    held = [n for n in names if n.lower() not in denied and n.lower().startswith("prv")]
    return json_response(
        200,
        {
            "@odata.context": f"{req.service_root}$metadata#{FUNCTION}Response",
            "RolePrivileges": [
                {
                    "Depth": "Global",
                    "PrivilegeId": str(uuid.uuid5(_PRIVILEGE_NS, name.lower())),
                    "BusinessUnitId": BUSINESS_UNIT_ID,
                    "PrivilegeName": name,
                }
                for name in held
            ],
        },
    )


def _names(args: str, query: str) -> list[str]:
    """The ``PrivilegeNames`` array, given inline or as a parameter alias (``=@p`` + ``@p=[...]``)."""
    key, _, value = args.partition("=")
    if key.strip() != "PrivilegeNames":
        raise ApiError(400, "0x80040203", "PrivilegeNames is required.")
    value = value.strip()
    if value.startswith("@"):
        value = dict(parse_qsl(query)).get(value, "")
    try:
        names = json.loads(value)
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ApiError(400, "0x80040203", "PrivilegeNames must be a JSON array of privilege names.")
    return names
