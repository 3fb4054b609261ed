"""Change tracking: ``Prefer: odata.track-changes``, delta links and ``$deletedEntity`` entries.

Follows ``../shared/dataverse-webapi.md`` §4. A delta token is ``<version>!<MM/dd/yyyy HH:mm:ss>``
like Dataverse's: the version is the global version counter when the token was issued, the time
is when, so the token can expire after the configured retention (``0x80044352``).

The initial read pages over the records that existed at the version captured on its first page;
anything written while the client pages through has a later version and comes in the next delta,
so nothing is lost and nothing is reported twice. A delta read returns every record whose version
is above the token's (its latest state, once), ordered by version, then one ``$deletedEntity``
entry per tombstone; it pages the same way, bounded by the version captured on its first page.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime

from connector.sandbox.config import SandboxConfig
from connector.sandbox.faults import ApiError, bad_request
from connector.sandbox.query import Page, QueryOptions, RecordWriter, read_page
from connector.sandbox.schema import Table

__all__ = ["check_tracking", "delta_page", "format_token", "initial_page", "parse_token"]

_TOKEN = re.compile(r"(\d+)!(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2})")


def format_token(version: int, moment: datetime) -> str:
    """Return a delta token for a version issued at ``moment``."""
    return f"{version}!{moment.astimezone(UTC):%m/%d/%Y %H:%M:%S}"


def parse_token(token: str, config: SandboxConfig, current_version: int) -> int:
    """Return the version of a delta token, checking it is well formed and not expired.

    Raises:
        ApiError: 400 ``0x80044352`` when older than the retention; 400 when malformed.
    """
    m = _TOKEN.fullmatch(token.strip())
    if not m:
        raise bad_request("The $deltatoken is not valid. Use @odata.deltaLink exactly as returned.")
    version = int(m.group(1))
    month, day, year, hour, minute, second = (int(g) for g in m.groups()[1:])
    try:
        issued = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise bad_request("The $deltatoken is not valid. Use @odata.deltaLink exactly as returned.") from exc
    if version > current_version:
        raise bad_request(
            "The $deltatoken is not valid for this environment. Use @odata.deltaLink as returned."
        )
    if config.clock() - issued > config.change_token_retention:
        raise ApiError(
            400,
            "0x80044352",
            "Version stamp associated with the client has expired. Please perform a full sync.",
        )
    return version


def check_tracking(table: Table, options: QueryOptions, config: SandboxConfig) -> None:
    """Refuse change tracking on a table with tracking off, or with options it does not allow (§4)."""
    if table.logical_name in config.change_tracking_disabled:
        raise ApiError(400, "0x80072491", f"Entity {table.logical_name} isn't enabled for change tracking.")
    for name, present in (
        ("$filter", options.filter_text is not None),
        ("$orderby", bool(options.orderby)),
        ("$top", options.top is not None),
        ("$expand", bool(options.expand)),
    ):
        if present:
            raise bad_request(
                f'The "{name}" query parameter isn\'t supported when Change Tracking is enabled.'
            )


def initial_page(
    conn: sqlite3.Connection,
    table: Table,
    writer: RecordWriter,
    options: QueryOptions,
    page_size: int,
    state: dict | None,
    current_version: int,
) -> tuple[Page, int]:
    """Read one page of the initial tracked read; return it and the snapshot version."""
    snapshot = int(state["u"]) if state else current_version
    page = read_page(
        conn, table, writer, options, page_size, state, extra_where=('"versionnumber" <= ?', [snapshot])
    )
    if page.next_state is not None:
        page.next_state["u"] = snapshot
    return page, snapshot


def delta_page(
    conn: sqlite3.Connection,
    table: Table,
    writer: RecordWriter,
    since: int,
    page_size: int,
    state: dict | None,
    current_version: int,
    deleted_context: str,
) -> tuple[Page, int]:
    """Read one page of changes since version ``since``; return it and the upper version bound."""
    upper = int(state["u"]) if state else current_version
    phase = state.get("p", 0) if state else 0
    records: list[dict] = []
    next_state: dict | None = None
    if phase == 0:
        last_v, last_id = (state.get("k") or [since, ""]) if state else (since, "")
        pk = table.primary_id
        sql = (
            f'SELECT {writer.select_sql()}, "versionnumber", "{pk}" FROM "{table.logical_name}" '
            f'WHERE "versionnumber" > ? AND "versionnumber" <= ? '
            f'AND ("versionnumber" > ? OR ("versionnumber" = ? AND "{pk}" > ?)) '
            f'ORDER BY "versionnumber", "{pk}" LIMIT {page_size + 1}'
        )
        rows = conn.execute(sql, (since, upper, last_v, last_v, last_id)).fetchall()
        width = len(writer.sql_columns)
        if len(rows) > page_size:
            rows = rows[:page_size]
            next_state = {"p": 0, "k": list(rows[-1][width:]), "u": upper}
        records = writer.records(conn, [r[:width] for r in rows])
        if next_state is not None:
            return Page(records, next_state), upper
        phase, last_v, last_id = 1, since, ""
    else:
        last_v, last_id = state.get("k") or [since, ""]  # type: ignore[union-attr]
    room = page_size - len(records)
    sql = (
        "SELECT versionnumber, id FROM _dv_tombstones WHERE entity = ? AND versionnumber > ? "
        "AND versionnumber <= ? AND (versionnumber > ? OR (versionnumber = ? AND id > ?)) "
        f"ORDER BY versionnumber, id LIMIT {room + 1}"
    )
    rows = conn.execute(sql, (table.logical_name, since, upper, last_v, last_v, last_id)).fetchall()
    if len(rows) > room:
        rows = rows[:room]
        last = rows[-1] if rows else (last_v, last_id)
        next_state = {"p": 1, "k": [last[0], last[1]], "u": upper}
    for _, record_id in rows:
        records.append({"@odata.context": deleted_context, "id": record_id, "reason": "deleted"})
    return Page(records, next_state), upper
