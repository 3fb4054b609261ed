"""``dvsync check``: validate the configuration and the mappings against the org's real metadata.

Checks, and reports every problem at once (never just the first):

1. the mapping files are valid on their own (file, line, key, "did you mean");
2. the settings name an environment, and a solution when output columns must be created;
3. authentication works (``WhoAmI``), and the application user holds every privilege dvsync needs
   (:mod:`jobs.service.privileges`; each missing one is named);
4. every mapped table and column exists in the org with a type the mapping can read, with the
   closest real column names suggested for a typo; one record per table is then read with the
   sync's exact ``$select`` and converted, to catch what the metadata alone cannot;
5. every enabled job finds the canonical fields it needs, and its own file (``scoring.toml``,
   ``duplicates.toml``, ``customer_value.toml`` and ``rfm_segments.toml``) loads and names only
   mapped fields;
6. every output column exists with a compatible type, or is listed as one ``dvsync provision``
   will create; ``writeback.solution`` exists, is unmanaged, and its publisher's prefix is
   ``writeback.publisher_prefix``;
7. every label a scoring rule compares a choice field with is one of its options
   (:mod:`jobs.service.labels`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from connector.errors import AuthError, DataverseError, EndpointError, RetriableError
from core.errors import ConfigError, DvsyncError
from jobs.service.labels import check_labels
from jobs.service.mapping import (
    MappingErrors,
    MappingSet,
    OutputColumn,
    TableMapping,
    TableReader,
    collect_mappings,
    validate_against_org,
    validate_for_jobs,
)
from jobs.service.privileges import check_privileges
from jobs.service.provision import read_unpublished, unpublished_path
from jobs.service.views import ViewsConfig, load_views, validate_views_against_org

__all__ = ["CheckReport", "TableCheck", "check", "check_job_files", "problem_dict"]


class _Client(Protocol):
    def whoami(self) -> Any: ...

    def get_table(self, logical_name: str) -> Any: ...


@dataclass
class TableCheck:
    """One mapped table as the org has it.

    Attributes:
        name: the mapping (mirror table) name.
        table: the Dataverse logical name.
        entity_set: the Web API entity set the org reports.
        change_tracking: whether the org tracks changes (else sync uses a modifiedon window).
        fields: how many canonical fields the mapping fills.
        ok: no problem was found on this table.
    """

    name: str
    table: str
    entity_set: str | None = None
    change_tracking: bool | None = None
    fields: int = 0
    ok: bool = True


@dataclass
class CheckReport:
    """Everything ``dvsync check`` found.

    Attributes:
        environment: the environment URL checked.
        identity: WhoAmI's ids when authentication worked.
        tables: one entry per enabled mapped table.
        problems: every problem, each naming file, line and key where it can.
        to_provision: output columns that do not exist yet (``dvsync provision`` creates them).
        unpublished: ``table.column`` created by a provision that did not get to publish them.
    """

    environment: str | None = None
    identity: dict[str, str] | None = None
    tables: list[TableCheck] = field(default_factory=list)
    problems: list[ConfigError] = field(default_factory=list)
    to_provision: list[OutputColumn] = field(default_factory=list)
    unpublished: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing needs fixing (columns still to provision are not a problem)."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (``dvsync check --json``)."""
        return {
            "ok": self.ok,
            "environment": self.environment,
            "identity": self.identity,
            "tables": [vars(t) for t in self.tables],
            "problems": [problem_dict(p) for p in self.problems],
            "to_provision": [
                {"table": o.table, "result": o.result, "column": o.logical_name, "type": o.type}
                for o in self.to_provision
            ],
            "unpublished": self.unpublished,
        }


def problem_dict(problem: ConfigError) -> dict[str, Any]:
    """One problem as a dict: file, line, key, message, hint and the full text."""
    return {
        "file": problem.file,
        "line": problem.line,
        "key": problem.key,
        "message": problem.message,
        "hint": problem.hint,
        "text": str(problem),
    }


def _as_problem(exc: DvsyncError, key: str) -> ConfigError:
    if isinstance(exc, ConfigError):
        return exc
    if isinstance(exc, EndpointError):
        return ConfigError(exc.message, key=exc.key, hint=exc.hint)  # the setting to fix, once
    if isinstance(exc, RetriableError) and key == "auth":
        key = "dataverse.url"  # no answer at all is about reaching the URL, not the sign-in
    hint = getattr(exc, "hint", None)
    return ConfigError(str(exc), key=key, hint=hint)


def check(
    settings: Any,
    client: _Client | None,
    *,
    mappings: MappingSet | None = None,
    jobs: Sequence[str] | None = None,
) -> CheckReport:
    """Validate settings and mappings against the org; collect every problem.

    Args:
        settings: the loaded Settings.
        client: a DataverseClient (None when it could not be built; the reason is a problem).
        mappings: the mapping set, when already loaded; read from ``settings.mappings.dir`` otherwise.
        jobs: the enabled jobs (default ``settings.jobs.enabled``).

    Returns:
        The report; ``report.ok`` is False when anything must be fixed.
    """
    report = CheckReport(environment=settings.dataverse.url)
    unreadable = False
    if mappings is None:
        try:
            mappings, problems = collect_mappings(
                settings.mappings.dir, prefix=settings.writeback.publisher_prefix
            )
            report.problems.extend(problems)
            unreadable = _unreadable_files(problems, mappings)
        except ConfigError as exc:
            report.problems.append(exc)
    enabled_jobs = list(settings.jobs.enabled if jobs is None else jobs)
    if mappings is not None:
        if not unreadable:
            # A mapping file that does not load hides its table: every job check would then report
            # the table as missing, a knock-on of the one problem already listed.
            report.problems.extend(validate_for_jobs(mappings, enabled_jobs))
            report.problems.extend(check_job_files(mappings, enabled_jobs))
        chosen = _chosen_tables(settings, mappings, report)
        views = _load_views(settings, mappings, report)
    else:
        chosen, views = [], None
    try:
        _check_org(report, settings, client, mappings, chosen, enabled_jobs, unreadable, views)
    finally:
        report.problems = _once(report.problems)
    return report


# Files in the mappings folder that configure a job rather than map a table.
_JOB_FILES = frozenset({"outputs", "scoring", "duplicates", "customer_value", "rfm_segments"})


def _unreadable_files(problems: Sequence[ConfigError], mappings: MappingSet) -> bool:
    """Whether a table's mapping file did not load (so its table is unknown to every later check)."""
    return any(
        problem.file
        and Path(problem.file).parent == Path(mappings.directory)
        and Path(problem.file).stem not in _JOB_FILES
        and Path(problem.file).stem not in mappings.tables
        for problem in problems
    )


def _once(problems: Sequence[ConfigError]) -> list[ConfigError]:
    """Each problem once, in the order found (a file read by two checks reports its error once)."""
    seen: set[str] = set()
    unique = []
    for problem in problems:
        if str(problem) not in seen:
            seen.add(str(problem))
            unique.append(problem)
    return unique


def _check_org(
    report: CheckReport,
    settings: Any,
    client: _Client | None,
    mappings: MappingSet | None,
    chosen: Sequence[TableMapping],
    jobs: Sequence[str],
    unreadable: bool,
    views: ViewsConfig | None,
) -> None:
    if client is None:
        return
    try:
        identity = client.whoami()
        report.identity = {
            "user_id": identity.user_id,
            "business_unit_id": identity.business_unit_id,
            "organization_id": identity.organization_id,
        }
    except (AuthError, DataverseError) as exc:
        report.problems.append(_as_problem(exc, "auth"))
        return  # every other call would fail the same way
    definitions: dict[str, Any] = {}
    for mapping in chosen:
        entry = TableCheck(name=mapping.name, table=mapping.table, fields=len(mapping.fields))
        report.tables.append(entry)
        try:
            definition = client.get_table(mapping.table)
        except DataverseError as exc:
            if exc.status == 404:
                report.problems.append(
                    mapping.error("table", f"no table `{mapping.table}` in the org", "check the logical name")
                )
            else:
                report.problems.append(_as_problem(exc, f"{mapping.name}.table"))
            entry.ok = False
            continue
        definitions[mapping.name] = definition
        entry.entity_set = mapping.entity_set or definition.entity_set_name
        entry.change_tracking = bool(definition.change_tracking_enabled)
        outputs = mappings.outputs_for(mapping.name)
        problems, missing = validate_against_org(mapping, definition, outputs)
        if problems:
            entry.ok = False
            report.problems.extend(_locate_outputs(problems, mappings))
        else:
            probe = _probe(client, mapping, definition, outputs)
            if probe is not None:
                entry.ok = False
                report.problems.append(probe)
        report.to_provision.extend(missing)
    if views is not None:
        report.problems.extend(validate_views_against_org(views, _columns_of(client)))
    unpublished = read_unpublished(unpublished_path(settings.mirror.path))
    if unpublished:
        names = [f"{t}.{c}" for t, cols in sorted(unpublished.items()) for c in cols]
        report.unpublished = names
        report.problems.append(
            ConfigError(
                f"{len(names)} column(s) created by an earlier `dvsync provision` are not published: "
                + ", ".join(names[:8])
                + (f" and {len(names) - 8} more" if len(names) > 8 else ""),
                key="provision",
                hint="run `dvsync provision` again: it publishes them",
            )
        )
    if report.to_provision and settings.writeback.enabled and not settings.writeback.solution:
        report.problems.append(
            ConfigError(
                f"{len(report.to_provision)} output columns do not exist yet and no solution is configured "
                "to create them in",
                key="writeback.solution",
                hint="set writeback.solution to the unique name of an unmanaged solution whose publisher "
                f"prefix is `{settings.writeback.publisher_prefix}`, then run `dvsync provision`",
            )
        )
    if mappings is not None and not unreadable:
        report.problems.extend(check_labels(mappings, definitions, jobs))
    if settings.writeback.solution and hasattr(client, "find_solution"):
        report.problems.extend(check_solution(client, settings.writeback))
    if mappings is not None and hasattr(client, "held_privileges"):
        report.problems.extend(
            check_privileges(client, identity.user_id, chosen, mappings, report.to_provision)
        )


def _columns_of(client: _Client) -> Callable[[str], Mapping[str, Any]]:
    def columns(table: str) -> Mapping[str, Any]:
        return client.get_table(table).attributes

    return columns


def _load_views(settings: Any, mappings: MappingSet, report: CheckReport) -> ViewsConfig | None:
    """views.toml, validated against the mapping files (problems go in the report); None without it."""
    path = Path(settings.mappings.dir) / "views.toml"
    if not path.exists():
        return None
    try:
        return load_views(path, mappings)
    except MappingErrors as exc:
        report.problems.extend(exc.problems)
    except ConfigError as exc:
        report.problems.append(exc)
    return None


def check_job_files(mappings: MappingSet, jobs: Sequence[str]) -> list[ConfigError]:
    """Load each enabled job's own file (scoring rules, duplicate settings, customer value and RFM
    segments) and validate the columns it names against what the mapping provides.

    Returns:
        One problem per file that does not load (each names its file, line and key).
    """
    directory = mappings.directory
    columns = {
        entity: [*_ids(entity), *(f for t in mappings.by_entity(entity) for f in t.fields)]
        for entity in ("lead", "contact", "account")
    }
    loaders: list[tuple[str, Any]] = []
    if "scoring" in jobs:
        from jobs.leads.scoring.rules import load_rules

        loaders.append(("scoring", lambda: load_rules(directory / "scoring.toml", columns=columns["lead"])))
    if "duplicates" in jobs:
        from jobs.leads.duplicates.config import CANONICAL_COLUMNS, load_duplicate_config

        # A [lead.link.contact] section is checked against the contact mapping only when contacts
        # are mapped (and enabled); otherwise the link has nothing to run against, and judging its
        # columns by an absent mapping would report errors the run never meets. It is then held to
        # the canonical columns, as the duplicates job itself loads the file.
        dedup_columns = {
            entity: columns[entity] if mappings.by_entity(entity) else CANONICAL_COLUMNS[entity]
            for entity in columns
        }
        for entity in ("lead", "contact", "account"):
            if mappings.by_entity(entity):
                loaders.append(
                    (
                        "duplicates",
                        lambda entity=entity: load_duplicate_config(
                            directory / "duplicates.toml", entity, columns=dedup_columns
                        ),
                    )
                )
    if "rfm" in jobs or "clv" in jobs:
        from jobs.customers.config import load_customer_value_config

        loaders.append(("rfm/clv", lambda: load_customer_value_config(directory / "customer_value.toml")))
    problems: list[ConfigError] = []
    for _, load in loaders:
        try:
            load()
        except MappingErrors as exc:
            problems.extend(exc.problems)
        except ConfigError as exc:
            problems.append(exc)
    return problems


def _ids(entity: str) -> list[str]:
    return [f"{entity}_id"]


def _probe(
    client: Any, mapping: TableMapping, definition: Any, outputs: Sequence[OutputColumn]
) -> ConfigError | None:
    """Read one record with the sync's exact ``$select`` and convert it.

    The metadata can list a column that the Web API still refuses in ``$select``, and a value can
    defy its mapped type; one record per table, read with the sync's ``$select`` and annotations,
    finds both before the first sync does.
    """
    reader = TableReader.bind(mapping, definition, outputs)
    try:
        records = client.iter_records(
            reader.entity_set, reader.select, page_size=1, annotations=reader.annotations or None
        )
        record = next(iter(records), None)
        if record is not None:
            problems: list[str] = []
            reader.frame([record], problems)
            if problems:
                return mapping.error("fields", problems[0], "check the column's type in Dynamics")
    except ConfigError as exc:
        return exc
    except DataverseError as exc:
        hint = "remove the column from the mapping"
        if any(f.type_column for f in mapping.fields.values()):
            hint += "; for a polymorphic lookup, drop `type_column` (the lookup's annotation gives the table)"
        return mapping.error(
            "fields", f"reading {mapping.table} with the mapped columns failed: {exc.message}", hint
        )
    return None


def _chosen_tables(settings: Any, mappings: MappingSet, report: CheckReport) -> list:
    try:
        return mappings.enabled_tables(settings.sync.tables or None)
    except ConfigError as exc:
        report.problems.append(ConfigError(exc.message, key="sync.tables", hint=exc.hint))
        return mappings.enabled_tables()


def _locate_outputs(problems: list[ConfigError], mappings: MappingSet) -> list[ConfigError]:
    """Give output-column problems the file and line of their entry in outputs.toml."""
    doc = mappings.outputs_doc
    located = []
    for problem in problems:
        if doc is not None and problem.file is None and problem.key:
            located.append(doc.error(problem.key, problem.message, problem.hint))
        else:
            located.append(problem)
    return located


def check_solution(client: Any, writeback: Any) -> list[ConfigError]:
    """The configured solution exists, is unmanaged, and its publisher's prefix is ours."""
    name = writeback.solution
    create = "create it with its publisher first (docs/setup-real-org.md, step 4)"
    try:
        solution = client.find_solution(name)
    except DataverseError as exc:
        return [ConfigError(f"could not look up solution `{name}`: {exc.message}", key="writeback.solution")]
    if solution is None:
        return [
            ConfigError(
                f"no solution with the unique name `{name}` in the org",
                key="writeback.solution",
                hint=f"use the solution's Name, not its display name, or {create}",
            )
        ]
    if solution.is_managed:
        return [
            ConfigError(
                f"solution `{name}` is managed: columns cannot be created in it",
                key="writeback.solution",
                hint="use an unmanaged solution",
            )
        ]
    prefix = (solution.publisher_prefix or "").lower()
    if prefix and prefix != writeback.publisher_prefix:
        return [
            ConfigError(
                f"the publisher of solution `{name}` has the prefix `{prefix}`, "
                f"but the result columns are named with `{writeback.publisher_prefix}`",
                key="writeback.publisher_prefix",
                hint=f'set publisher_prefix = "{prefix}" under [writeback], or use a solution of yours',
            )
        ]
    return []
