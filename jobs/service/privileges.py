"""The privileges dvsync's application user needs, and which of them it lacks.

The least-privilege role (docs/setup-real-org.md) holds exactly these:

- **Read** on every mapped table, at Organization depth (or Business Unit when all records live in
  the app user's business unit): ``prvRead<Table>``; activities (email, phone call, appointment,
  ...) share ``prvReadActivity``.
- **Write** on every table that receives results (``outputs.toml``): ``prvWrite<Table>``.
- For ``dvsync provision`` only, while columns are still to be created: ``prvCreateAttribute``
  (create a column), ``prvReadSolution`` and ``prvWriteSolution`` (add it to the solution).

``dvsync check`` asks Dataverse which of these the user holds (``RetrieveUserSetOfPrivilegesByNames``)
and names each missing one, with what dvsync needs it for. A read or write privilege held only at
User (Basic) depth is reported too: the app user owns no records, so it would see none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connector.errors import DataverseError
from core.errors import ConfigError
from jobs.service.mapping import MappingSet, OutputColumn, TableMapping

__all__ = ["PROVISION_PRIVILEGES", "Requirement", "check_privileges", "required_privileges"]

# Privilege names are built from a table's schema name; these are the standard tables'.
_SCHEMA_NAMES = {
    "lead": "Lead",
    "account": "Account",
    "contact": "Contact",
    "salesorder": "SalesOrder",
    "opportunity": "Opportunity",
    "quote": "Quote",
    "invoice": "Invoice",
    "product": "Product",
    "systemuser": "SystemUser",
}
_ACTIVITY_TABLES = frozenset(
    {"activitypointer", "email", "phonecall", "appointment", "task", "letter", "fax", "socialactivity"}
)
PROVISION_PRIVILEGES: tuple[tuple[str, str], ...] = (
    ("prvCreateAttribute", "create the result columns (dvsync provision)"),
    ("prvReadSolution", "find the solution the columns go into (dvsync provision)"),
    ("prvWriteSolution", "add the created columns to that solution (dvsync provision)"),
)
# Depths below which a read or write sees no record the app user does not own.
_TOO_SHALLOW = frozenset({"basic", "user"})


@dataclass(frozen=True)
class Requirement:
    """One privilege dvsync needs, and why (said in the message when it is missing)."""

    name: str
    why: str
    on_records: bool = True


def _privilege(access: str, table: str) -> str:
    if table in _ACTIVITY_TABLES:
        return f"prv{access}Activity"
    # Custom tables: their privileges carry the schema name, usually the logical name as typed.
    return f"prv{access}{_SCHEMA_NAMES.get(table, table)}"


def required_privileges(
    tables: Sequence[TableMapping], mappings: MappingSet, to_provision: Sequence[OutputColumn]
) -> list[Requirement]:
    """The privileges for syncing ``tables``, writing the enabled outputs, and provisioning."""
    needed: dict[str, Requirement] = {}
    for mapping in tables:
        name = _privilege("Read", mapping.table)
        needed.setdefault(name, Requirement(name, f"read {mapping.table} ({mapping.name}.toml)"))
    for output in mappings.outputs:
        mapping = mappings.tables.get(output.table)
        if not output.enabled or mapping is None or not mapping.enabled:
            continue
        name = _privilege("Write", mapping.table)
        needed.setdefault(name, Requirement(name, f"write the results to {mapping.table} (outputs.toml)"))
    if to_provision:
        for name, why in PROVISION_PRIVILEGES:
            needed[name] = Requirement(name, why, on_records=False)
    return list(needed.values())


def check_privileges(
    client: Any,
    user_id: str,
    tables: Sequence[TableMapping],
    mappings: MappingSet,
    to_provision: Sequence[OutputColumn],
) -> list[ConfigError]:
    """One problem per privilege the application user lacks (or holds at User depth only)."""
    needed = required_privileges(tables, mappings, to_provision)
    try:
        held = {k.lower(): v for k, v in client.held_privileges(user_id, [r.name for r in needed]).items()}
    except DataverseError as exc:
        return [
            ConfigError(
                f"could not read the application user's privileges: {exc.message}",
                key="privileges",
                hint="give its security role Read on Security Role (prvReadRole), or check the role by hand "
                "against docs/setup-real-org.md",
            )
        ]
    problems = []
    for requirement in needed:
        depth = held.get(requirement.name.lower())
        if depth is None:
            problems.append(
                ConfigError(
                    f"the application user lacks {requirement.name}, needed to {requirement.why}",
                    key="privileges",
                    hint="add it to dvsync's security role (docs/setup-real-org.md lists every privilege)",
                )
            )
        elif requirement.on_records and depth.lower() in _TOO_SHALLOW:
            problems.append(
                ConfigError(
                    f"the application user holds {requirement.name} at User depth only, so it can "
                    f"{requirement.why.split(' (')[0]} only for records it owns (none)",
                    key="privileges",
                    hint="set it to Organization (or Business Unit) depth in dvsync's security role",
                )
            )
    return problems
