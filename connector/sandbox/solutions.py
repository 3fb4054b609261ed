"""The sandbox's solutions: enough of ``GET solutions`` for ``dvsync check`` to find one by name.

``SandboxConfig.solutions`` maps unique names to their publisher's customization prefix (default:
the ``dvsync`` solution of the ``dvs`` publisher, which the demo and the tests provision into).
Served: ``GET solutions?$filter=uniquename eq '<name>'`` with ``$select`` and
``$expand=publisherid($select=customizationprefix)``; all of them are unmanaged.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from urllib.parse import parse_qsl

from connector.sandbox.faults import ApiError
from connector.sandbox.protocol import Request, Response, json_response

__all__ = ["list_solutions"]

_BY_NAME = re.compile(r"^\s*uniquename\s+eq\s+'((?:[^']|'')*)'\s*$")
_NS = uuid.UUID("0d5c1f3e-52a5-4d0a-9a53-3b7d3f8c1e21")


def list_solutions(req: Request, solutions: Mapping[str, str]) -> Response:
    """Answer ``GET solutions`` (optionally filtered by unique name)."""
    if req.method != "GET":
        raise ApiError(405, "0x0", "The sandbox serves solutions read-only.")
    options = dict(parse_qsl(req.query))
    wanted = None
    if "$filter" in options:
        match = _BY_NAME.match(options["$filter"])
        if match is None:
            raise ApiError(400, "0x80060888", "The sandbox filters solutions by uniquename eq '<name>' only.")
        wanted = match.group(1).replace("''", "'")
    rows = [
        {
            "solutionid": str(uuid.uuid5(_NS, name)),
            "uniquename": name,
            "ismanaged": False,
            "publisherid": {
                "publisherid": str(uuid.uuid5(_NS, "publisher:" + prefix)),
                "customizationprefix": prefix,
            },
        }
        for name, prefix in sorted(solutions.items())
        if wanted is None or name.lower() == wanted.lower()
    ]
    return json_response(200, {"@odata.context": f"{req.service_root}$metadata#solutions", "value": rows})
