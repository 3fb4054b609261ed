"""Query options on metadata resources: ``$select``, ``$filter`` and ``$expand`` checked against the type.

Metadata is queried with a small OData subset (reference §7.1-7.2): ``$select`` of the type's
properties, ``$filter`` with ``eq``/``ne``/``gt``/``ge``/``lt``/``le``/``and``/``or``/``not`` on
scalar properties and ``X/Value`` of managed properties (enum literals such as
``Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned'`` compare as their names), and ``$expand`` of
the type's navigation properties. A name the type does not have is Dataverse's 400 "Could not find
a property named ..." (§3.9), never an empty answer; an option the sandbox does not implement is
a 400 naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from connector.sandbox.faults import bad_request
from connector.sandbox.protocol import split_top_level

__all__ = ["MetadataQuery", "MetadataType", "label", "parse_metadata_query", "parse_nested_query"]

NS = "Microsoft.Dynamics.CRM."


@dataclass(frozen=True)
class MetadataType:
    """What a metadata type offers to a query.

    Attributes:
        name: the type name (``EntityMetadata``), used in error messages.
        properties: property names that may be selected and filtered.
        navigations: navigation properties that may be expanded.
        labels: properties holding a ``Label``; Dataverse refuses them in ``$filter``.
    """

    name: str
    properties: frozenset[str]
    navigations: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()

    def unknown(self, name: str) -> Exception:
        """The 400 Dataverse answers for a property the type does not have (§3.9)."""
        return bad_request(f"Could not find a property named '{name}' on type '{NS}{self.name}'.")


@dataclass
class MetadataQuery:
    """Parsed options of one metadata request (or of one ``$expand`` item)."""

    select: list[str] | None = None
    filter: object | None = None
    expand: dict[str, dict[str, str]] = field(default_factory=dict)

    def matches(self, obj: dict) -> bool:
        """Whether ``obj`` passes the ``$filter`` (always, without one)."""
        return self.filter is None or bool(_evaluate(self.filter, obj))

    def project(self, obj: dict, always: tuple[str, ...] = ("MetadataId",)) -> dict:
        """Keep the selected properties, the always-returned ones and the expanded ones."""
        if self.select is None:
            return obj
        keep = {*self.select, *always, *self.expand, "@odata.type"}
        return {k: v for k, v in obj.items() if k in keep}

    def context_select(self) -> str:
        """``(a,b)`` for ``@odata.context`` when ``$select`` was given."""
        return f"({','.join(self.select)})" if self.select else ""


_OPTIONS = frozenset({"$select", "$filter", "$expand"})


def parse_metadata_query(query: str, kind: MetadataType) -> MetadataQuery:
    """Parse a metadata request's query string.

    Raises:
        ApiError: 400 for an option, property or navigation property the sandbox does not serve.
    """
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in _OPTIONS:
            raise bad_request(f"The query parameter {name} is not supported")
        options[name] = value
    return parse_nested_query(options, kind)


def parse_nested_query(options: dict[str, str], kind: MetadataType) -> MetadataQuery:
    """Parse already split options (``$expand=Attributes($select=...;$filter=...)``'s inside)."""
    for name in options:
        if name not in _OPTIONS:
            raise bad_request(f"The query option {name} is not supported on {NS}{kind.name}.")
    out = MetadataQuery()
    if "$select" in options:
        out.select = []
        for name in (part.strip() for part in options["$select"].split(",")):
            # A navigation property may be named in $select too (Airbyte's discover selects
            # Attributes beside its $expand); it is served only when expanded.
            if name not in kind.properties and name not in kind.navigations:
                raise kind.unknown(name)
            out.select.append(name)
    if "$filter" in options:
        out.filter = _parse_filter(options["$filter"])
        _check_filter(out.filter, kind)
    if "$expand" in options:
        for item in split_top_level(options["$expand"]):
            m = re.fullmatch(r"(\w+)(?:\((.*)\))?", item, re.DOTALL)
            if not m:
                raise bad_request(f"Syntax error in $expand '{options['$expand']}'.")
            if m.group(1) not in kind.navigations:
                raise kind.unknown(m.group(1))
            nested: dict[str, str] = {}
            for part in (m.group(2) or "").split(";"):
                if part.strip():
                    key, _, value = part.partition("=")
                    nested[key.strip()] = value
            out.expand[m.group(1)] = nested
    return out


def label(text: str, metadata_id: str | None = None) -> dict:
    """A ``Label`` complex value in the user's language (1033), empty when there is no text."""
    localized = {
        "Label": text,
        "LanguageCode": 1033,
        "IsManaged": True,
        "MetadataId": metadata_id,
        "HasChanged": None,
    }
    return {"LocalizedLabels": [localized] if text else [], "UserLocalizedLabel": localized if text else None}


def _parse_filter(text: str) -> object:
    # Enum literals (Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned') compare as their member name.
    plain = re.sub(r"Microsoft\.Dynamics\.CRM\.\w+'([^']*)'", r"'\1'", text)
    try:
        return ODataParser().parse(ODataLexer().tokenize(plain))
    except ODataException as exc:
        raise bad_request(f"Syntax error in $filter '{text}': {exc}") from exc


_COMPARISONS = (ast.Eq, ast.NotEq, ast.Gt, ast.GtE, ast.Lt, ast.LtE)


def _check_filter(node: object, kind: MetadataType) -> None:
    """Refuse what the evaluator cannot answer faithfully, before any object is compared."""
    if isinstance(node, ast.BoolOp):
        _check_filter(node.left, kind)
        _check_filter(node.right, kind)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check_filter(node.operand, kind)
    elif isinstance(node, ast.Compare) and isinstance(node.comparator, _COMPARISONS):
        _check_operand(node.left, kind)
        _check_operand(node.right, kind)
    elif isinstance(node, ast.Call):
        raise bad_request(
            f"The function '{node.func.name}' is not supported in a metadata $filter; "
            "metadata queries compare properties with eq, ne, gt, ge, lt and le."
        )
    else:
        raise bad_request("A metadata $filter combines comparisons of properties with literals.")


def _check_operand(node: object, kind: MetadataType) -> None:
    if isinstance(node, ast._Literal):
        return
    root = node
    while isinstance(root, ast.Attribute):
        root = root.owner
    if not isinstance(root, ast.Identifier):
        raise bad_request("A metadata $filter compares a property with a literal.")
    if root.name not in kind.properties:
        raise kind.unknown(root.name)
    if root.name in kind.labels:
        raise bad_request(
            f"The property '{root.name}' is a Label; Label properties cannot be used in $filter."
        )


def _evaluate(node: object, obj: dict) -> object:
    if isinstance(node, ast.BoolOp):
        left, right = _evaluate(node.left, obj), _evaluate(node.right, obj)
        return (left and right) if isinstance(node.op, ast.And) else (left or right)
    if isinstance(node, ast.UnaryOp):
        return not _evaluate(node.operand, obj)
    assert isinstance(node, ast.Compare)
    left, right = _value(node.left, obj), _value(node.right, obj)
    if isinstance(left, str) and isinstance(right, str):
        left, right = left.lower(), right.lower()
    if isinstance(node.comparator, ast.Eq):
        return left == right
    if isinstance(node.comparator, ast.NotEq):
        return left != right
    if left is None or right is None or isinstance(left, str) != isinstance(right, str):
        return False  # an ordering comparison with null or across types matches nothing
    if isinstance(node.comparator, ast.Gt):
        return left > right
    if isinstance(node.comparator, ast.GtE):
        return left >= right
    if isinstance(node.comparator, ast.Lt):
        return left < right
    return left <= right


def _value(node: object, obj: dict) -> object:
    if isinstance(node, ast._Literal):
        return node.py_val
    if isinstance(node, ast.Identifier):
        return obj.get(node.name)
    owner = _value(node.owner, obj)  # ast.Attribute: X/Value
    return owner.get(node.attr) if isinstance(owner, dict) else None
