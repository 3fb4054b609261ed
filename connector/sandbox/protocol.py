"""Transport-independent request and response values, and the Web API's header conventions.

The HTTP server and the ``$batch`` executor both turn what they receive into a :class:`Request`
and send back a :class:`Response`, so an inner batch request is served by exactly the same code as
a top-level one.
"""

from __future__ import annotations

import fnmatch
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from connector.sandbox.faults import ApiError

__all__ = [
    "API_PREFIX",
    "JSON_TYPE",
    "AnnotationFilter",
    "Headers",
    "Request",
    "Response",
    "error_response",
    "json_response",
    "parse_prefer",
]

API_VERSION = "v9.2"
API_PREFIX = f"/api/data/{API_VERSION}/"
JSON_TYPE = "application/json; odata.metadata=minimal"


class Headers:
    """Case-insensitive, order-keeping header map (HTTP header names are case-insensitive)."""

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()):
        self._items: dict[str, tuple[str, str]] = {}
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self[name] = value

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __setitem__(self, name: str, value: str) -> None:
        self._items[name.lower()] = (name, value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the header value, or default."""
        item = self._items.get(name.lower())
        return item[1] if item else default

    def items(self) -> list[tuple[str, str]]:
        """Return (name, value) pairs with the original spelling."""
        return list(self._items.values())


@dataclass
class Request:
    """One Web API request, from the socket or from inside a ``$batch``.

    Attributes:
        method: HTTP method, upper-case.
        path: the resource path after ``/api/data/v9.2/``, percent-decoded (``leads(<id>)``).
        query: the raw query string (still percent-encoded), without ``?``.
        headers: request headers.
        body: request body bytes.
        base_url: scheme and authority the client used (``http://127.0.0.1:8765``).
        content_ids: ``Content-ID`` → entity URL of records created earlier in the same change set.
        in_batch: served as part of a ``$batch``.
    """

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    base_url: str
    content_ids: dict[str, str] | None = None
    in_batch: bool = False

    @property
    def service_root(self) -> str:
        """The service root URL, with trailing slash."""
        return self.base_url + API_PREFIX

    def json(self) -> object:
        """Parse the body as JSON, raising Dataverse's 400 on malformed input."""
        if not self.body.strip():
            raise ApiError(400, "0x0", "The request body is empty; a JSON object was expected.")
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, "0x0", f"The request body is not valid JSON: {exc}.") from exc


@dataclass
class Response:
    """One Web API response."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """Return the first header with that name (case-insensitive)."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def json_response(status: int, payload: object, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """Return a JSON response with the OData headers Dataverse sends."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, [("Content-Type", JSON_TYPE), ("OData-Version", "4.0"), *headers], body)


def error_response(error: ApiError) -> Response:
    """Return the Dataverse-shaped error response for an :class:`ApiError`."""
    return json_response(error.status, error.body(), [("REQ_ID", str(uuid.uuid4())), *error.headers.items()])


_PREFER_ITEM = re.compile(r'\s*([A-Za-z][\w.\-]*)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,]*))?\s*(?:,|$)')


def parse_prefer(headers: Headers) -> dict[str, str]:
    """Parse ``Prefer`` into preference → value (``""`` for flags), quotes removed.

    Several Prefer headers joined by commas are accepted (§1.2).
    """
    text = headers.get("Prefer") or ""
    prefs: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _PREFER_ITEM.match(text, pos)
        if not m or m.end() == pos:
            break
        value = (m.group(2) or "").strip()
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        prefs[m.group(1).lower()] = value
        pos = m.end()
    return prefs


class AnnotationFilter:
    """Which instance annotations a client asked for with ``odata.include-annotations``.

    The value is a comma list of names or ``*`` patterns; a leading ``-`` excludes (OData 4.0
    §8.2.8.4). Exclusions win.
    """

    def __init__(self, value: str | None):
        self.value = value
        self._include: list[str] = []
        self._exclude: list[str] = []
        for part in (value or "").split(","):
            part = part.strip()
            if not part:
                continue
            if part.startswith("-"):
                self._exclude.append(part[1:])
            else:
                self._include.append(part)

    def __bool__(self) -> bool:
        return bool(self._include)

    def wants(self, term: str) -> bool:
        """Whether the annotation ``term`` (``OData.Community.Display.V1.FormattedValue``) is included."""
        if any(fnmatch.fnmatchcase(term, p) for p in self._exclude):
            return False
        return any(fnmatch.fnmatchcase(term, p) for p in self._include)


FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
NAV_PROPERTY = "Microsoft.Dynamics.CRM.associatednavigationproperty"
TOTAL_COUNT = "Microsoft.Dynamics.CRM.totalrecordcount"
COUNT_EXCEEDED = "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"
GLOBAL_METADATA_VERSION = "Microsoft.Dynamics.CRM.globalmetadataversion"


def split_top_level(text: str) -> list[str]:
    """Split query-option text on the commas outside parentheses: ``a($select=x,y),b`` → 2 parts.

    Parts are stripped; empty ones are kept so that callers can reject ``a,,b`` or a trailing comma.
    """
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts
