"""The Web API itself: routes a :class:`Request` to the right operation and returns a :class:`Response`.

Transport-free on purpose: the HTTP server (:mod:`server`) and the ``$batch`` executor
(:mod:`batch`) both call :meth:`Service.handle`, so a request inside a batch behaves exactly like
the same request sent alone.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime
from urllib.parse import parse_qsl, unquote

from connector.sandbox import metadata, roles, solutions
from connector.sandbox.batch import handle_batch
from connector.sandbox.changes import check_tracking, delta_page, format_token, initial_page, parse_token
from connector.sandbox.config import SandboxConfig
from connector.sandbox.customizations import (
    CUSTOMIZATION_TABLES,
    add_solution_component,
    saved_query_fetchxml,
)
from connector.sandbox.faults import (
    ApiError,
    bad_request,
    not_found_record,
    not_found_segment,
    not_implemented,
)
from connector.sandbox.fetchxml import parse_fetchxml, parse_sql, run_fetch
from connector.sandbox.keys import find_by_key, parse_key_segment, resolve_key
from connector.sandbox.messages import serve_message
from connector.sandbox.messages_queue import serve_bound
from connector.sandbox.paging import encode_skiptoken
from connector.sandbox.protocol import (
    AnnotationFilter,
    Request,
    Response,
    error_response,
    json_response,
    parse_prefer,
)
from connector.sandbox.query import (
    COUNT_CAP,
    RecordWriter,
    collection_payload,
    count_rows,
    link,
    page_state,
    parse_options,
    read_page,
    strip_query,
)
from connector.sandbox.schema import Table
from connector.sandbox.storage import Store
from connector.sandbox.writes import apply_delete, apply_upsert, convert_value, parse_guid

__all__ = ["Service"]

log = logging.getLogger(__name__)

_BULK_ACTIONS = {
    f"Microsoft.Dynamics.CRM.{name}" for name in ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")
}
_SEGMENT = re.compile(r"^(?P<name>[A-Za-z_$][\w.$]*)(?:\((?P<key>[^)]*)\))?(?:/(?P<rest>.*))?$")


class Service:
    """Serves the Web API over one :class:`Store`.

    Args:
        store: the sandbox's state.
        config: behaviour settings (limits are applied by the server, not here).
    """

    def __init__(self, store: Store, config: SandboxConfig):
        self.store = store
        self.config = config

    def now(self) -> datetime:
        """The server's current UTC time."""
        return self.config.clock()

    def handle(self, req: Request) -> Response:
        """Serve one request; every failure becomes a Dataverse-shaped error response."""
        try:
            return self._route(req)
        except ApiError as exc:
            return error_response(exc)
        except Exception:  # a bug must still answer in Dataverse's shape, and be logged
            log.exception("sandbox: unexpected error serving %s %s", req.method, req.path)
            return error_response(ApiError(500, "0x80040216", "An unexpected error occurred."))

    # --- routing ------------------------------------------------------------------------------

    def _route(self, req: Request) -> Response:
        path = req.path
        if path.startswith("$") and req.content_ids is not None:
            m = re.match(r"\$(\d+)(.*)$", path)
            if m and m.group(1) in req.content_ids:
                target = req.content_ids[m.group(1)]
                path = target.split("/api/data/", 1)[-1].split("/", 1)[-1] + m.group(2)
        if path in ("", "/"):
            return metadata.service_document(self.store, self.config, req)
        if path == "$metadata":
            return metadata.csdl(self.store, self.config, req)
        if path == "$batch":
            if req.method != "POST":
                raise ApiError(405, "0x0", "The $batch endpoint only accepts POST.")
            if req.in_batch:
                raise bad_request("Batches cannot be nested.")
            return handle_batch(req, self.store, self.handle)
        if path.startswith("EntityDefinitions"):
            return metadata.entity_definitions(self.store, self.config, req, path)
        if path.startswith("RelationshipDefinitions"):
            return metadata.relationship_definitions(self.store, req, path)
        if path == "Merge" or path.startswith("RetrieveDuplicates("):
            from connector.sandbox import messages_merge

            if path == "Merge":
                return messages_merge.merge(self, req)
            return messages_merge.retrieve_duplicates(self, req, path)
        if path == "solutions":
            return solutions.list_solutions(req, self.config.solutions)
        if path.startswith("systemusers(") and roles.FUNCTION in path:
            return roles.user_privileges(req, path, self.config.denied_privileges)
        message = serve_message(self.store, self.config, req, path)
        if message is not None:
            return message
        m = _SEGMENT.match(path)
        if not m:
            raise not_found_segment(path)
        table = self.store.table_for_set(m.group("name"))
        if table is None:
            raise not_found_segment(m.group("name"))
        if req.method != "GET" and not table.writable:
            verb = {"POST": "Create", "PATCH": "Update", "PUT": "Update", "DELETE": "Delete"}.get(
                req.method, req.method
            )
            raise bad_request(
                f"The '{verb}' method does not support entities of type '{table.logical_name}'."
            )
        key, rest = m.group("key"), m.group("rest")
        if key is None:
            if rest == "$count":
                return self._count(req, table)
            if rest in _BULK_ACTIONS:
                if req.method != "POST":
                    raise ApiError(405, "0x0", f"{rest} is an action: use POST.")
                return self._bulk(req, table, rest.rsplit(".", 1)[1])
            if rest:
                raise ApiError(404, "0x8006088a", f"Resource not found for the segment '{rest}'.")
            if req.method == "GET":
                return self._collection(req, table)
            if req.method == "POST":
                return self._create(req, table)
            raise ApiError(
                405,
                "0x0",
                f"The HTTP method '{req.method}' is not allowed on the entity set '{table.entity_set}'.",
            )
        record_id = parse_guid(unquote(key))
        key_values: dict[str, object] = {}
        if record_id is None:
            record_id, key_values = self._by_alternate_key(req, table, key)
        if rest and rest.startswith("Microsoft.Dynamics.CRM."):
            bound = serve_bound(self, req, table, record_id, rest)
            if bound is not None:
                return bound
        if rest:
            return self._property(req, table, record_id, rest)
        if req.method == "GET":
            return self._single(req, table, record_id)
        if req.method == "PATCH":
            return self._upsert(req, table, record_id, key_values)
        if req.method == "DELETE":
            return self._delete(req, table, record_id)
        raise ApiError(
            405, "0x0", f"The HTTP method '{req.method}' is not allowed on a {table.logical_name} record."
        )

    def _by_alternate_key(self, req: Request, table: Table, segment: str) -> tuple[str, dict[str, object]]:
        """Resolve ``leads(emailaddress1='a@b.c')`` (§5.3) to a record id.

        Returns:
            (record id, key values): an existing record's id and no values, or, for an upsert
            (PATCH without ``If-Match``) of a record that does not exist, a new id and the key
            values the new record takes from the URL.
        """
        pairs = parse_key_segment(segment)
        if pairs is None:
            raise bad_request(
                f"The key '{segment}' is neither a GUID nor alternate key values such as "
                f"{table.entity_set}(emailaddress1='a@b.c')."
            )
        _, values = resolve_key(table, self.store.keys(table.logical_name), pairs)
        found = find_by_key(self.store.conn(), table, values)
        if found is not None:
            return found, {}
        if req.method == "PATCH" and not req.headers.get("If-Match"):
            return str(uuid.uuid4()), values
        raise ApiError(
            404,
            "0x80060891",
            f"A record with the specified key values does not exist in {table.logical_name} entity",
        )

    # --- reads --------------------------------------------------------------------------------

    def _collection(self, req: Request, table: Table) -> Response:
        now = self.now()
        names = {name for name, _ in parse_qsl(req.query, keep_blank_values=True)}
        for language in ("fetchXml", "sql", "savedQuery"):
            if language in names:
                return self._query_language(req, table, language)
        if "userQuery" in names:
            raise not_implemented("The userQuery query parameter (personal views)")
        options = parse_options(req.query, table, now, self.store.tables)
        prefer = parse_prefer(req.headers)
        annotations = AnnotationFilter(prefer.get("odata.include-annotations"))
        applied: list[str] = []
        state, page_no = page_state(options)
        tracking = "odata.track-changes" in prefer or bool(state and state.get("t"))
        if tracking or options.deltatoken is not None:
            check_tracking(table, options, self.config)
        if "odata.include-annotations" in prefer:
            applied.append(f'odata.include-annotations="{prefer["odata.include-annotations"]}"')
        page_size = self.config.max_page_size
        if "odata.maxpagesize" in prefer:
            try:
                asked = int(prefer["odata.maxpagesize"])
            except ValueError as exc:
                raise bad_request(
                    f"'{prefer['odata.maxpagesize']}' is not a valid odata.maxpagesize."
                ) from exc
            if asked <= 0:
                raise bad_request(
                    f"'{asked}' is not a valid odata.maxpagesize; it must be a positive number."
                )
            page_size = min(asked, self.config.max_page_size)
            applied.append(f"odata.maxpagesize={page_size}")
            options.top = None  # §3.6: $top is ignored with odata.maxpagesize
        conn = self.store.conn()
        writer = RecordWriter(self.store.tables, table, options.select, annotations, options.expand)
        root = req.service_root
        context = f"{root}$metadata#{table.entity_set}{writer.context_suffix(options.select)}"
        base_query = strip_query(req.query, "$skiptoken")

        def page_link(next_state: dict, *, tracked: bool = False) -> str:
            token = encode_skiptoken(next_state, page_no + 1, tracked)
            return link(root, table.entity_set, base_query, "$skiptoken", token)

        next_link = None
        extra: dict[str, object] = {}
        if options.deltatoken is not None:
            since = parse_token(options.deltatoken, self.config, self.store.committed_version)
            deleted_context = f"{root}$metadata#{table.entity_set}/$deletedEntity"
            page, upper = delta_page(
                conn, table, writer, since, page_size, state, self.store.committed_version, deleted_context
            )
            context += "/$delta"
            if page.next_state is not None:
                next_link = page_link(page.next_state, tracked=True)
            else:
                delta_query = strip_query(req.query, "$skiptoken", "$deltatoken")
                extra["@odata.deltaLink"] = link(
                    root, table.entity_set, delta_query, "$deltatoken", format_token(upper, now)
                )
            applied.append("odata.track-changes")
        elif tracking:
            page, snapshot = initial_page(
                conn, table, writer, options, page_size, state, self.store.committed_version
            )
            if page.next_state is not None:
                page.next_state["t"] = 1
                next_link = page_link(page.next_state, tracked=True)
            else:
                extra["@odata.deltaLink"] = link(
                    root, table.entity_set, base_query, "$deltatoken", format_token(snapshot, now)
                )
            applied.append("odata.track-changes")
        else:
            page = read_page(conn, table, writer, options, page_size, state)
            if page.next_state is not None:
                next_link = page_link(page.next_state)
        count = count_rows(conn, table, options.filter) if options.count else None
        # The delta link goes before value (as in Microsoft's example); nextLink after it (§3.6, §4).
        body = collection_payload(context, page, next_link, count, annotations, extra)
        headers = [("Preference-Applied", ",".join(applied))] if applied else []
        return json_response(200, body, headers)

    def _query_language(self, req: Request, table: Table, language: str) -> Response:
        """``GET <set>?fetchXml=...`` (§3.8), ``?sql=SELECT ...`` or ``?savedQuery=<id>`` (a system
        view's FetchXML), with no other query option."""
        pairs = parse_qsl(req.query, keep_blank_values=True)
        others = [name for name, _ in pairs if name != language]
        if others:
            raise bad_request(f"The query parameter {others[0]} cannot be combined with {language}.")
        if len(pairs) > 1:
            raise bad_request(
                f"Query option '{language}' was specified more than once, "
                "but it must be specified at most once."
            )
        text = pairs[0][1]
        if language == "savedQuery":
            text, language = saved_query_fetchxml(self.store.conn(), table, text), "fetchXml"
        parse = parse_fetchxml if language == "fetchXml" else parse_sql
        query = parse(text, table, self.store.tables)
        prefer = parse_prefer(req.headers)
        annotations = AnnotationFilter(prefer.get("odata.include-annotations"))
        body = run_fetch(self.store.conn(), self.store.tables, query, annotations, self.now())
        headers = []
        if "odata.include-annotations" in prefer:
            headers.append(
                ("Preference-Applied", f'odata.include-annotations="{prefer["odata.include-annotations"]}"')
            )
        context = f"{req.service_root}$metadata#{table.entity_set}"
        return json_response(200, {"@odata.context": context, **body}, headers)

    def _count(self, req: Request, table: Table) -> Response:
        if req.method != "GET":
            raise ApiError(405, "0x0", "$count only answers GET.")
        options = parse_options(req.query, table, self.now(), self.store.tables)
        conn = self.store.conn()
        if options.deltatoken is not None:
            # §4: GET <set>/$count?$deltatoken=... counts the changes since the token.
            check_tracking(table, options, self.config)
            upper = self.store.committed_version
            since = parse_token(options.deltatoken, self.config, upper)
            changed = conn.execute(
                f'SELECT COUNT(*) FROM "{table.logical_name}" WHERE versionnumber > ? AND versionnumber <= ?',
                (since, upper),
            ).fetchone()[0]
            deleted = conn.execute(
                "SELECT COUNT(*) FROM _dv_tombstones "
                "WHERE entity = ? AND versionnumber > ? AND versionnumber <= ?",
                (table.logical_name, since, upper),
            ).fetchone()[0]
            total = min(changed + deleted, COUNT_CAP)
        else:
            total = min(count_rows(conn, table, options.filter), COUNT_CAP)
        # §3.1: a bare number as text/plain with a UTF-8 byte order mark.
        return Response(
            200,
            [("Content-Type", "text/plain"), ("OData-Version", "4.0")],
            "\ufeff".encode() + str(total).encode(),
        )

    def _fetch(self, req: Request, table: Table, record_id: str) -> tuple[dict | None, str]:
        options = parse_options(req.query, table, self.now(), self.store.tables)
        for name, present in (
            ("$filter", options.filter_text),
            ("$orderby", options.orderby),
            ("$top", options.top),
        ):
            if present:
                raise bad_request(f"The query option {name} is not allowed when retrieving a single record.")
        prefer = parse_prefer(req.headers)
        annotations = AnnotationFilter(prefer.get("odata.include-annotations"))
        writer = RecordWriter(self.store.tables, table, options.select, annotations, options.expand)
        conn = self.store.conn()
        rows = conn.execute(
            f'SELECT {writer.select_sql()} FROM "{table.logical_name}" WHERE "{table.primary_id}" = ?',
            (record_id,),
        ).fetchall()
        context = (
            f"{req.service_root}$metadata#{table.entity_set}{writer.context_suffix(options.select)}/$entity"
        )
        if not rows:
            return None, context
        return writer.records(conn, rows)[0], context

    def _single(self, req: Request, table: Table, record_id: str) -> Response:
        record, context = self._fetch(req, table, record_id)
        if record is None:
            raise not_found_record(table.logical_name, record_id)
        etag = str(record["@odata.etag"])
        prefer = parse_prefer(req.headers)
        inm = req.headers.get("If-None-Match")
        # §5.4: 304 when unchanged, never when annotations are requested.
        if inm and inm.strip() == etag and "odata.include-annotations" not in prefer:
            return Response(304, [("OData-Version", "4.0"), ("ETag", etag)])
        headers = [("ETag", etag)]
        if "odata.include-annotations" in prefer:
            headers.append(
                ("Preference-Applied", f'odata.include-annotations="{prefer["odata.include-annotations"]}"')
            )
        return json_response(200, {"@odata.context": context, **record}, headers)

    def _property(self, req: Request, table: Table, record_id: str, prop: str) -> Response:
        column = {c.wire_name: c for c in table.columns if not c.internal}.get(prop)
        if column is None:
            raise ApiError(404, "0x8006088a", f"Resource not found for the segment '{prop}'.")
        conn = self.store.conn()
        if req.method == "GET":
            row = conn.execute(
                f'SELECT "{column.logical_name}" FROM "{table.logical_name}" WHERE "{table.primary_id}" = ?',
                (record_id,),
            ).fetchone()
            if row is None:
                raise not_found_record(table.logical_name, record_id)
            value = bool(row[0]) if column.attribute_type == "Boolean" and row[0] is not None else row[0]
            if value is None:
                return Response(204, [("OData-Version", "4.0")])
            context = f"{req.service_root}$metadata#{table.entity_set}({record_id})/{prop}"
            return json_response(200, {"@odata.context": context, "value": value})
        if column.is_lookup:
            raise bad_request(
                f"Set the lookup '{column.logical_name}' with {column.logical_name}@odata.bind in a PATCH."
            )
        if req.method == "PUT":
            body = req.json()
            if not isinstance(body, dict) or "value" not in body:
                raise bad_request('A single-property PUT needs a body like {"value": ...}.')
            payload = {column.logical_name: body["value"]}
        elif req.method == "DELETE":
            payload = {column.logical_name: None}
        else:
            raise ApiError(405, "0x0", f"The HTTP method '{req.method}' is not allowed on a property.")
        convert_value(column, payload[column.logical_name], table.logical_name)
        with self.store.transaction() as conn:
            apply_upsert(self.store, conn, table, record_id, payload, if_match="*", now=self.now())
        return Response(204, [("OData-Version", "4.0")])

    # --- writes -------------------------------------------------------------------------------

    def _entity_url(self, req: Request, table: Table, record_id: str) -> str:
        return f"{req.service_root}{table.entity_set}({record_id})"

    def _write_response(
        self, req: Request, table: Table, record_id: str, created: bool, is_post: bool
    ) -> Response:
        prefer = parse_prefer(req.headers)
        url = self._entity_url(req, table, record_id)
        if prefer.get("return") == "representation":
            record, context = self._fetch(req, table, record_id)
            assert record is not None
            headers = [("Preference-Applied", "return=representation"), ("ETag", str(record["@odata.etag"]))]
            if not is_post:
                headers.append(("OData-EntityId", url))
            return json_response(201 if created else 200, {"@odata.context": context, **record}, headers)
        headers = [("OData-Version", "4.0"), ("OData-EntityId", url)]
        if req.in_batch:
            headers.insert(1, ("Location", url))
        return Response(204, headers)

    def _duplicate_rule(self, req: Request, table: Table) -> tuple[str, ...]:
        """Columns of the duplicate rule, when the client sent ``MSCRM.SuppressDuplicateDetection: false``."""
        flag = (req.headers.get("MSCRM.SuppressDuplicateDetection") or "").strip().lower()
        if flag != "false":
            return ()
        return self.config.duplicate_rules.get(table.logical_name, ())

    def _create(self, req: Request, table: Table) -> Response:
        body = req.json()
        with self.store.transaction() as conn:
            record_id, _ = apply_upsert(
                self.store,
                conn,
                table,
                None,
                body,
                content_ids=req.content_ids,
                now=self.now(),
                duplicate_rule=self._duplicate_rule(req, table),
            )
            solution = req.headers.get("MSCRM.SolutionUniqueName")
            if solution and table.logical_name in CUSTOMIZATION_TABLES:
                add_solution_component(conn, solution, table.logical_name, record_id)
        return self._write_response(req, table, record_id, True, True)

    def _upsert(self, req: Request, table: Table, record_id: str, key_values: dict[str, object]) -> Response:
        body = req.json()
        if key_values and isinstance(body, dict):
            # An upsert by alternate key creates the record with the key values of the URL (§5.3).
            body = {**body, **{name: value for name, value in key_values.items() if name not in body}}
        with self.store.transaction() as conn:
            _, created = apply_upsert(
                self.store,
                conn,
                table,
                record_id,
                body,
                if_match=req.headers.get("If-Match"),
                if_none_match=req.headers.get("If-None-Match"),
                content_ids=req.content_ids,
                now=self.now(),
                duplicate_rule=self._duplicate_rule(req, table),
            )
        return self._write_response(req, table, record_id, created, False)

    def _bulk(self, req: Request, table: Table, action: str) -> Response:
        """``CreateMultiple``/``UpdateMultiple``/``UpsertMultiple`` bound to the entity set (§5.6).

        All targets succeed or none does: the whole action is one transaction, as in Dataverse.
        """
        body = req.json()
        targets = body.get("Targets") if isinstance(body, dict) else None
        if not isinstance(targets, list) or not targets:
            raise bad_request(
                f'{action} needs a body like {{"Targets": [{{...}}, ...]}} with at least one record.'
            )
        expected = f"Microsoft.Dynamics.CRM.{table.logical_name}"
        ids: list[str] = []
        with self.store.transaction() as conn:
            for target in targets:
                if not isinstance(target, dict):
                    raise bad_request(f"Each of the {action} Targets must be a JSON object.")
                kind = str(target.get("@odata.type", expected)).lstrip("#")
                if kind != expected:
                    raise bad_request(
                        f"The Targets of {table.entity_set}/{action} must be of type {expected}, not {kind}."
                    )
                record_id = None
                values = {k: v for k, v in target.items() if k != "@odata.id"}
                if action != "CreateMultiple":
                    record_id, key_values = self._target_id(table, action, target)
                    values = {**values, **{k: v for k, v in key_values.items() if k not in values}}
                new_id, _ = apply_upsert(
                    self.store,
                    conn,
                    table,
                    record_id,
                    values,
                    if_match="*" if action == "UpdateMultiple" else None,
                    now=self.now(),
                )
                ids.append(new_id)
        if action == "UpdateMultiple":
            return Response(204, [("OData-Version", "4.0")])
        context = f"{req.service_root}$metadata#Microsoft.Dynamics.CRM.{action}Response"
        return json_response(200, {"@odata.context": context, "Ids": ids})

    def _target_id(self, table: Table, action: str, target: dict) -> tuple[str, dict[str, object]]:
        """The record a bulk target addresses: its primary key, or ``@odata.id`` by id or alternate key."""
        given = target.get(table.primary_id)
        if given is not None:
            record_id = parse_guid(str(given))
            if record_id is None:
                raise bad_request(f"The {table.primary_id} '{given}' of a {action} target is not a GUID.")
            return record_id, {}
        reference = target.get("@odata.id")
        if not isinstance(reference, str):
            raise bad_request(f"Each of the {action} Targets needs its {table.primary_id} or an @odata.id.")
        m = re.search(r"(?:^|/)(?P<set>\w+)\((?P<key>.*)\)$", reference)
        if not m or m.group("set") != table.entity_set:
            raise bad_request(f"The @odata.id '{reference}' does not address a {table.logical_name} record.")
        record_id = parse_guid(unquote(m.group("key")))
        if record_id is not None:
            return record_id, {}
        pairs = parse_key_segment(m.group("key"))
        if pairs is None:
            raise bad_request(f"The @odata.id '{reference}' has neither a GUID nor alternate key values.")
        _, values = resolve_key(table, self.store.keys(table.logical_name), pairs)
        found = find_by_key(self.store.conn(), table, values)
        if found is not None:
            return found, {}
        if action == "UpdateMultiple":
            raise ApiError(
                404,
                "0x80060891",
                f"A record with the specified key values does not exist in {table.logical_name} entity",
            )
        return str(uuid.uuid4()), values

    def _delete(self, req: Request, table: Table, record_id: str) -> Response:
        with self.store.transaction() as conn:
            apply_delete(self.store, conn, table, record_id, req.headers.get("If-Match"), self.now())
        return Response(204, [("OData-Version", "4.0")])
