"""Which of a set of privileges a Dataverse user holds (``RetrieveUserSetOfPrivilegesByNames``).

``dvsync check`` asks for exactly the privileges dvsync needs and names the missing ones, instead
of letting the first sync or write fail with a 403. The function is bound to ``systemuser`` and
returns the named privileges the user holds through any of their roles and teams, as
``RolePrivileges`` entries (``PrivilegeName``, ``Depth``, ...); a name the user does not hold is
simply absent from the answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from connector.errors import ProtocolError

__all__ = ["held_privileges"]

FUNCTION = "Microsoft.Dynamics.CRM.RetrieveUserSetOfPrivilegesByNames"


def held_privileges(http: Any, user_id: str, names: Iterable[str]) -> dict[str, str]:
    """Return ``{privilege name: depth}`` for those of ``names`` that ``user_id`` holds.

    Args:
        http: the client's :class:`connector.http.HttpClient`.
        user_id: the ``systemuserid`` (``WhoAmI``'s ``UserId`` for the caller itself).
        names: privilege names such as ``prvReadLead``.

    Raises:
        DataverseError: the request failed (a 403 means the user may not even read its roles).
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    # The array goes in a parameter alias: the function's argument list cannot hold it literally.
    payload = http.get_json(
        f"systemusers({user_id})/{FUNCTION}(PrivilegeNames=@p)",
        params={"@p": json.dumps(wanted, separators=(",", ":"))},
    )
    entries = payload.get("RolePrivileges")
    if not isinstance(entries, list):
        raise ProtocolError(f"{FUNCTION} answered without a RolePrivileges list")
    held: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("PrivilegeName"), str):
            held[entry["PrivilegeName"].lower()] = str(entry.get("Depth") or "")
    return {name: held[name.lower()] for name in wanted if name.lower() in held}
