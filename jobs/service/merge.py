"""Merge duplicates in Dynamics: decided ones and, when an admin allows it, policy ones.

One merge run, per table (lead, contact, account) that ``duplicates.toml`` configures:

1. Groups are found again from the mirror, the same way the duplicates job finds them (pairs a
   person marked "not a duplicate" removed, records dvsync already merged left out).
2. The group state is refreshed (``merge_state``) and the decisions in the "Duplicate decision"
   column are read from the mirror. A decision made before its group last changed is *stale*: it
   is cleared in Dynamics so the person decides again, never carried out blindly. "Not a
   duplicate" and "keep both" are remembered (``merge_memory``).
3. The merges to make are the decided ones plus, with ``auto_merge = true``, the pairs of the
   merge band that meet the extra conditions; at most ``max_per_run`` records per table, whole
   groups only.
4. A dry run (the default) shows each merge (both records side by side, the fields that change on
   the master, the child records that move) and writes it to a CSV. A real run reads both records
   from Dataverse, audits their before-images, and merges each group in one change set: the
   group is merged or untouched. A lost answer is checked against the records before it is
   reported.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from connector.merge import merged_into
from core.errors import ConfigError, DvsyncError
from jobs.leads.duplicates.clustering import cluster
from jobs.leads.duplicates.config import load_duplicate_config
from jobs.leads.duplicates.detect import find_duplicates
from jobs.leads.duplicates.merge_config import load_merge_config
from jobs.leads.duplicates.merge_policy import (
    apply_cap,
    drop_pairs,
    evaluate_decisions,
    group_fingerprints,
    merge_candidates,
    refresh_state,
)
from jobs.leads.duplicates.survivorship import survivorship_columns, update_content
from jobs.service import merge_store
from jobs.service.compute import JobOutcome, duplicate_groups
from jobs.service.mapping import MappingSet
from jobs.service.mapping.catalogue import OUTPUT_CHOICES
from jobs.service.mirror import Mirror, MirrorError
from jobs.service.settings import Settings

__all__ = ["MERGE_TABLES", "MergeReport", "TableMerges", "merge_inputs", "run_merge_job", "run_merges"]

log = logging.getLogger(__name__)

MERGE_TABLES = ("lead", "contact", "account")
_DECISION_CODES = ("merge", "not_duplicate", "keep_both")  # in the order of OUTPUT_CHOICES
_WRITABLE = frozenset({"string", "integer", "float", "money"})  # mapped fields UpdateContent may carry
_CHILDREN = {
    # table -> (child entity, its column naming the parent, label)
    "account": (("contact", "account_id", "contacts"), ("order", "customer_id", "orders")),
    "contact": (("order", "customer_id", "orders"),),
    "lead": (("activity", "lead_id", "activities"),),
}


@dataclass
class TableMerges:
    """One table's merge run.

    Attributes:
        table: ``lead``, ``contact`` or ``account``.
        preview: one row per merge (see :data:`PREVIEW_COLUMNS` in the CSV), made or to be made.
        held_back: merges not made this run, with ``why``: over the per-run cap (next run), or a
            closed master.
        decisions: the decisions read from Dynamics and what was done with each.
        groups: per group: ``group``, ``master_id``, ``subordinates``, ``outcome``, ``error``.
        note: why the table was skipped, if it was.
    """

    table: str
    preview: pd.DataFrame = field(default_factory=pd.DataFrame)
    held_back: pd.DataFrame = field(default_factory=pd.DataFrame)
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    groups: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None

    def count(self, outcome: str) -> int:
        """Records merged away (``merged``) or not (``failed``, ``unknown``, ``skipped``)."""
        return sum(len(g["subordinates"]) for g in self.groups if g["outcome"] == outcome)


@dataclass
class MergeReport:
    """What a merge run did (or, dry, would do)."""

    dry_run: bool
    tables: list[TableMerges] = field(default_factory=list)
    csv_path: Path | None = None

    @property
    def ok(self) -> bool:
        """No group failed or ended unknown."""
        return not any(g["outcome"] in ("failed", "unknown") for t in self.tables for g in t.groups)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary."""
        return {
            "dry_run": self.dry_run,
            "csv": str(self.csv_path) if self.csv_path else None,
            "tables": {
                t.table: {
                    "planned": len(t.preview),
                    "merged": t.count("merged"),
                    "failed": t.count("failed") + t.count("unknown"),
                    "held_back": len(t.held_back),
                    "stale_decisions": int(
                        (t.decisions.get("action", pd.Series(dtype=object)) == "stale").sum()
                    ),
                    "groups": t.groups,
                    "note": t.note,
                }
                for t in self.tables
            },
        }


def run_merges(
    client: Any,
    mirror: Mirror,
    mappings: MappingSet,
    settings: Settings,
    *,
    tables: Sequence[str] | None = None,
    dry_run: bool = True,
    run_id: int | None = None,
    csv_path: str | Path | None = None,
) -> MergeReport:
    """Make (or, dry, preview) the merges the decisions and the policy allow.

    Args:
        client: a DataverseClient (``merge_group``, ``get_record``, ``get_table``, ``update_many``).
        mirror: the open, synced mirror.
        mappings: the validated mapping set.
        settings: settings (``mappings.dir``, ``mirror.path``).
        tables: limit to these tables (default: lead, contact, account where configured).
        dry_run: preview only: nothing is written to Dynamics nor remembered (the default).
        run_id: the run to audit the merges under.
        csv_path: where the preview CSV goes (default ``<mirror dir>/merges/merge-<time>.csv``).

    Raises:
        ConfigError: an unknown table, or a mistake in ``duplicates.toml``.
    """
    chosen = list(tables) if tables else list(MERGE_TABLES)
    for name in chosen:
        if name not in MERGE_TABLES:
            raise ConfigError(
                f"dvsync does not merge `{name}` records", hint=f"tables: {', '.join(MERGE_TABLES)}"
            )
    report = MergeReport(dry_run=dry_run)
    config_path = Path(settings.mappings.dir) / "duplicates.toml"
    layouts = mirror.layouts()
    for table in chosen:
        if table not in layouts or table not in mappings.tables:
            if tables:
                report.tables.append(TableMerges(table, note="not mirrored: map it and run `dvsync sync`"))
            continue
        if not _configured(config_path, table):
            continue
        report.tables.append(_merge_table(client, mirror, mappings, config_path, table, dry_run, run_id))
    report.csv_path = (
        _write_csv(report, settings, csv_path) if any(len(t.preview) for t in report.tables) else None
    )
    return report


def run_merge_job(
    client: Any,
    mirror: Mirror,
    mappings: MappingSet,
    settings: Settings,
    *,
    dry_run: bool,
    run_id: int | None,
) -> JobOutcome:
    """The pipeline's ``merge`` job: :func:`run_merges` as a job outcome (never raises a job error)."""
    try:
        report = run_merges(client, mirror, mappings, settings, dry_run=dry_run, run_id=run_id)
    except ConfigError:
        raise  # a file to fix: the run stops with exit code 2, like the other jobs
    except DvsyncError as exc:
        log.error("job merge failed: %s", exc)
        return JobOutcome("merge", status="failed", message=str(exc))
    summary = report.as_dict()
    parts = [
        f"{t}: {v['merged'] if not dry_run else v['planned']} {'merged' if not dry_run else 'planned'}"
        + (f", {v['failed']} failed" if v["failed"] else "")
        + (f", {v['held_back']} held back" if v["held_back"] else "")
        for t, v in summary["tables"].items()
    ]
    return JobOutcome(
        "merge",
        status="ok" if report.ok else "failed",
        message="; ".join(parts) or "nothing to merge",
        details={"merges": summary["tables"], "csv": summary["csv"]},
    )


def merge_inputs(
    mirror: Mirror, frames: Mapping[str, pd.DataFrame], config_path: Path | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Prepare the duplicates job's records the way the merge run sees them.

    Records dvsync merged away are left out, the survivorship columns the master preferences name
    (``order_count``, ``last_activity_on``) are added, and the "not a duplicate" pairs are returned
    per table for :func:`jobs.service.compute.run_duplicates`.
    """
    layouts = mirror.layouts()
    out: dict[str, pd.DataFrame] = {}
    ruled: dict[str, pd.DataFrame] = {}
    for table, frame in frames.items():
        if frame.empty or table not in layouts:
            out[table] = frame
            continue
        id_column = layouts[table].id_column
        master_by = _master_by(config_path, table)
        out[table] = _prepared(mirror, table, frame, id_column, master_by)
        ruled[table] = merge_store.memory(mirror, table)
    return out, ruled


def _master_by(config_path: Path | None, table: str) -> tuple[str, ...]:
    if config_path is None or not config_path.exists():
        return ()
    try:
        return load_duplicate_config(config_path, table).master_by
    except ConfigError:
        return ()  # an unconfigured table; the duplicates job reports real mistakes itself


def _prepared(
    mirror: Mirror, table: str, frame: pd.DataFrame, id_column: str, master_by: Sequence[str]
) -> pd.DataFrame:
    merged = merge_store.merged_ids(mirror, table)
    if merged:
        frame = frame[~frame[id_column].astype(str).str.lower().isin(merged).to_numpy()].reset_index(
            drop=True
        )
    derived = {"order_count", "last_activity_on"} & {m.lstrip("-") for m in master_by}
    if not derived:
        return frame
    orders = _entity(mirror, "order") if "order_count" in derived else None
    activities = _entity(mirror, "activity") if "last_activity_on" in derived else None
    return survivorship_columns(
        table, frame, id_column=id_column, orders=orders, activities=activities, wanted=list(derived)
    )


def _configured(config_path: Path, table: str) -> bool:
    from core.tomlfile import load_toml

    return isinstance(load_toml(config_path).data.get(table), dict)


def _entity(mirror: Mirror, entity: str) -> pd.DataFrame | None:
    try:
        return mirror.read_entity(entity)
    except MirrorError:
        return None


def _merge_table(
    client: Any,
    mirror: Mirror,
    mappings: MappingSet,
    config_path: Path,
    table: str,
    dry_run: bool,
    run_id: int | None,
) -> TableMerges:
    out = TableMerges(table)
    config = load_duplicate_config(config_path, table)
    policy = load_merge_config(config_path, table, tuple(config.fields))
    id_column = config.id_column
    records = mirror.read_frame(table, include_system=True)
    records[id_column] = records[id_column].astype(str).str.lower()
    merged = merge_store.merged_ids(mirror, table)
    records = records[~records[id_column].isin(merged)].reset_index(drop=True)
    # Exactly what the duplicates job compares (merge_inputs), so groups and masters agree.
    compare = _prepared(
        mirror,
        table,
        records.drop(columns=[c for c in records.columns if c.startswith(("out_", "_"))]),
        id_column,
        config.master_by,
    )
    memory = merge_store.memory(mirror, table)
    pairs = drop_pairs(find_duplicates(compare, **config.find_kwargs()), memory)
    groups = cluster(pairs, records=compare, **config.cluster_kwargs())
    ids = records[id_column]
    held = records.set_index(ids)["out_suggested_master"] if "out_suggested_master" in records else None
    found = duplicate_groups(pairs, groups, held)

    fingerprints = group_fingerprints(found, compare, id_column, list(config.fields))
    modified = records.set_index(ids)["_modifiedon"]
    state = refresh_state(merge_store.load_state(mirror, table), fingerprints, found, modified)
    decisions = _read_decisions(client, mappings, table, records, id_column)
    ruled = memory[memory["decision"] != "merge"]
    evaluated = evaluate_decisions(decisions, found, state, ruled)
    approvals = _approvals(memory, found)
    evaluated = pd.concat([evaluated, approvals], ignore_index=True) if not approvals.empty else evaluated
    out.decisions = evaluated
    if not dry_run:
        for item in approvals[approvals["action"] == "stale"].itertuples(index=False):
            merge_store.forget_approval(mirror, table, item.record_id, item.master_id)
        merge_store.save_state(mirror, table, state)
        _record_rulings(mirror, table, evaluated, found)
        _requeue(client, mappings, table, evaluated)
        ruled = merge_store.memory(mirror, table)
        ruled = ruled[ruled["decision"] != "merge"]
    # This run's rulings count at once (a dry run records nothing but must not plan them either).
    fresh = evaluated[evaluated["action"].isin(["not_duplicate", "keep_both"])]
    fresh = pd.DataFrame(
        {"id_a": fresh["record_id"], "id_b": fresh["master_id"], "decision": fresh["action"]}
    )
    ruled = pd.concat([ruled[["id_a", "id_b", "decision"]], fresh], ignore_index=True)
    candidates = merge_candidates(
        found,
        pairs,
        compare,
        policy,
        id_column=id_column,
        decided=evaluated,
        memory=ruled,
        phone_region=config.phone_region,
        excluded=merged,
    )
    # Dataverse merges only into an active record: a closed lead cannot be the master.
    closed = _closed(records, table, id_column)
    blocked = candidates["master_id"].isin(closed)
    taken, capped = apply_cap(candidates[~blocked.to_numpy()], policy.max_per_run)
    out.held_back = pd.concat(
        [
            capped.assign(why=f"over max_per_run ({policy.max_per_run}); next run"),
            candidates[blocked.to_numpy()].assign(why="the master is closed; reopen it or merge by hand"),
        ],
        ignore_index=True,
    )
    out.preview = _preview(
        mirror, mappings, table, records, id_column, taken, policy.fields, list(config.fields)
    )
    if dry_run or taken.empty:
        out.groups = [
            {"group": g, "master_id": rows["master_id"].iloc[0], "subordinates": list(rows["subordinate_id"]),
             "outcome": "planned" if dry_run else "none", "error": None}
            for g, rows in taken.groupby("group", sort=False)
        ]  # fmt: skip
        return out
    entity_set = _entity_set(client, mappings, table)
    for group, rows in taken.groupby("group", sort=False):
        out.groups.append(
            _merge_one_group(
                client, mirror, mappings, table, entity_set, str(group), rows, out.preview, policy, run_id
            )
        )
        for sub in rows["subordinate_id"]:
            merge_store.forget_approval(mirror, table, sub, rows["master_id"].iloc[0])
    return out


def _closed(records: pd.DataFrame, table: str, id_column: str) -> set[str]:
    """Records the mirror knows are closed (leads not open); others are checked before merging."""
    if table != "lead" or "status" not in records:
        return set()
    status = records["status"].astype("string").str.lower()
    return set(records.loc[status.notna().to_numpy() & status.ne("open").fillna(False).to_numpy(), id_column])


def _approvals(memory: pd.DataFrame, found: pd.DataFrame) -> pd.DataFrame:
    """Merges approved outside Dynamics (the console), as decisions; stale when the master changed."""
    approved = memory[memory["decision"] == "merge"]
    rows = []
    for item in approved.itertuples(index=False):
        current = found["suggested_master"].get(item.id_a)
        action = "merge" if current is not None and str(current).lower() == item.id_b else "stale"
        why = (
            f"approved ({item.source})" if action == "merge" else "the approved master is no longer suggested"
        )
        rows.append(
            {
                "record_id": item.id_a,
                "decision": "merge",
                "master_id": item.id_b,
                "action": action,
                "why": why,
            }
        )
    return pd.DataFrame(rows, columns=["record_id", "decision", "master_id", "action", "why"])


def _decision_output(mappings: MappingSet, table: str) -> Any:
    return next((o for o in mappings.outputs_for(table) if o.result == "duplicate_decision"), None)


def _read_decisions(
    client: Any, mappings: MappingSet, table: str, records: pd.DataFrame, id_column: str
) -> pd.DataFrame:
    """The decisions Dynamics holds, by the label of the chosen option (values are the org's)."""
    empty = pd.DataFrame(columns=["record_id", "decision", "held_master", "modified_on"])
    output = _decision_output(mappings, table)
    if output is None or output.mirror_column not in records:
        return empty
    chosen = records[records[output.mirror_column].notna()]
    if chosen.empty:
        return empty
    definition = client.get_table(mappings.tables[table].table)
    column = definition.attributes.get(output.logical_name)
    options = dict(getattr(column, "options", None) or {})
    by_label = {
        label.strip().lower(): code
        for label, code in zip(OUTPUT_CHOICES["duplicate_decision"], _DECISION_CODES, strict=True)
    }
    codes = {int(value): by_label.get(str(label).strip().lower()) for value, label in options.items()}
    decision = chosen[output.mirror_column].map(lambda v: codes.get(int(v)))
    unknown = decision.isna()
    if unknown.any():
        log.warning(
            "%s: %d record(s) hold a Duplicate decision option dvsync does not know (options: %s); ignored",
            table,
            int(unknown.sum()),
            ", ".join(f"{k}={v}" for k, v in options.items()),
        )
    held = (
        chosen["out_suggested_master"]
        if "out_suggested_master" in chosen
        else pd.Series(None, index=chosen.index)
    )
    frame = pd.DataFrame(
        {
            "record_id": chosen[id_column].to_numpy(),
            "decision": decision.to_numpy(),
            "held_master": held.to_numpy(),
            "modified_on": chosen["_modifiedon"].to_numpy(),
        }
    )
    return frame[frame["decision"].notna()].reset_index(drop=True)


def _record_rulings(mirror: Mirror, table: str, evaluated: pd.DataFrame, found: pd.DataFrame) -> None:
    """Remember "not a duplicate" and "keep both" (a decision on the master covers its whole group)."""
    for item in evaluated[evaluated["action"].isin(["not_duplicate", "keep_both"])].itertuples(index=False):
        # The person looked at the whole group: the record is ruled against every other member of
        # it, so a third record cannot chain it back into the same group.
        group = found.at[item.record_id, "duplicate_group"]
        others = [i for i in found.index[found["duplicate_group"] == group] if i != item.record_id]
        for other in others:
            merge_store.record_decision(mirror, table, item.record_id, other, item.action, source="dynamics")


def _requeue(client: Any, mappings: MappingSet, table: str, evaluated: pd.DataFrame) -> None:
    """Clear stale decisions in Dynamics, so the record asks a person again."""
    stale = evaluated[(evaluated["action"] == "stale") & (evaluated["why"] != "already recorded")]
    output = _decision_output(mappings, table)
    stale = stale[~stale["why"].str.startswith("the approved")]
    if stale.empty or output is None:
        return
    entity_set = _entity_set(client, mappings, table)
    results = client.update_many(entity_set, [(r, {output.logical_name: None}) for r in stale["record_id"]])
    for result in results:
        if not result.ok:
            log.warning(
                "%s %s: could not clear the stale decision: %s", table, result.record_id, result.message
            )
    log.info("%s: %d stale decision(s) re-queued", table, len(stale))


def _entity_set(client: Any, mappings: MappingSet, table: str) -> str:
    mapping = mappings.tables[table]
    return mapping.entity_set or client.get_table(mapping.table).entity_set_name


# ------------------------------------------------------------------------------------ preview


def _child_counts(mirror: Mirror, table: str) -> list[tuple[str, pd.Series]]:
    """Per kind of child record (label), how many each parent id has: read once per table."""
    counts = []
    for entity, column, label in _CHILDREN.get(table, ()):
        frame = _entity(mirror, entity)
        if frame is None or column not in frame:
            continue
        counts.append((label, frame[column].dropna().astype(str).str.lower().value_counts()))
    return counts


def _children(counts: list[tuple[str, pd.Series]], record_id: str) -> str:
    return ", ".join(f"{int(c[record_id])} {label}" for label, c in counts if record_id in c.index)


def _preview(
    mirror: Mirror,
    mappings: MappingSet,
    table: str,
    records: pd.DataFrame,
    id_column: str,
    taken: pd.DataFrame,
    rules: dict[str, str],
    fields: list[str],
) -> pd.DataFrame:
    """One row per merge: both records side by side, the master's changes, the children that move."""
    if taken.empty:
        return pd.DataFrame()
    by_id = records.set_index(id_column)
    counts = _child_counts(mirror, table)
    writable = [
        f for f in fields if (m := mappings.tables[table].fields.get(f)) is not None and m.type in _WRITABLE
    ]
    rows = []
    for group, members in taken.groupby("group", sort=False):
        master_id = members["master_id"].iloc[0]
        master = _as_record(by_id, master_id)
        subs = [_as_record(by_id, s) for s in members["subordinate_id"]]
        changes = update_content(master, subs, writable, rules, modified_column="_modifiedon")
        for position, item in enumerate(members.itertuples(index=False)):
            sub = subs[position]
            row = {
                "table": table,
                "group": group,
                "master_id": master_id,
                "subordinate_id": item.subordinate_id,
                "reason": item.reason,
                "score": None if pd.isna(item.score) else round(float(item.score), 4),
                "master_changes": "; ".join(f"{k}: {master.get(k)!s} -> {v!s}" for k, v in changes.items())
                if position == 0
                else "",
                "children_moving": _children(counts, item.subordinate_id),
                "_update_content": changes if position == 0 else {},
            }
            for name in fields:
                row[f"master.{name}"] = master.get(name)
                row[f"subordinate.{name}"] = sub.get(name)
            rows.append(row)
    return pd.DataFrame(rows)


def _as_record(by_id: pd.DataFrame, record_id: str) -> dict[str, Any]:
    if record_id not in by_id.index:
        return {}
    row = by_id.loc[record_id]
    return {k: (None if _missing(v) else v) for k, v in row.items()}


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _write_csv(report: MergeReport, settings: Settings, path: str | Path | None) -> Path:
    frames = [t.preview.drop(columns=["_update_content"]) for t in report.tables if len(t.preview)]
    frame = pd.concat(frames, ignore_index=True)
    if path is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = Path(settings.mirror.path).parent / "merges" / f"merge-{stamp}.csv"
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(target, index=False, quoting=csv.QUOTE_MINIMAL)
    return target


# ------------------------------------------------------------------------------------ execute


def _merge_one_group(
    client: Any,
    mirror: Mirror,
    mappings: MappingSet,
    table: str,
    entity_set: str,
    group: str,
    rows: pd.DataFrame,
    preview: pd.DataFrame,
    policy: Any,
    run_id: int | None,
) -> dict[str, Any]:
    master_id = str(rows["master_id"].iloc[0])
    subs = [str(s) for s in rows["subordinate_id"]]
    result: dict[str, Any] = {"group": group, "master_id": master_id, "subordinates": subs, "error": None}
    # Before-images, read now: they are what the audit keeps and what the pre-flight checks.
    before_master = client.get_record(entity_set, master_id)
    if before_master is None:
        return {**result, "outcome": "skipped", "error": f"the master {master_id} no longer exists"}
    if before_master.get("statecode") not in (None, 0):
        return {**result, "outcome": "skipped", "error": f"the master {master_id} is inactive"}
    befores = {s: client.get_record(entity_set, s) for s in subs}
    gone = [s for s, b in befores.items() if b is None or b.get("merged")]
    if gone:
        return {
            **result,
            "outcome": "skipped",
            "error": f"already merged or deleted in Dynamics: {', '.join(gone)}",
        }
    fields = mappings.tables[table].fields
    mine = preview[preview["group"] == group]
    canonical = mine["_update_content"].iloc[0] if len(mine) else {}
    update = {fields[k].column: v for k, v in canonical.items() if k in fields and fields[k].column}
    items = [
        {
            "subordinate_id": s,
            "reason": r.reason,
            "score": r.score,
            "before_master": before_master,
            "before_subordinate": befores[s],
            "update_content": update if i == 0 else {},
        }
        for i, (s, r) in enumerate(zip(subs, rows.itertuples(index=False), strict=True))
    ]
    audit_ids = merge_store.start_audit(mirror, run_id, table, group, master_id, items)
    outcome = client.merge_group(
        mappings.tables[table].table,
        master_id,
        [(s, update if i == 0 else None) for i, s in enumerate(subs)],
        parenting_checks=policy.parenting_checks,
    )
    status, error = outcome.status, " ".join(p for p in (outcome.code, outcome.message) if p) or None
    if status == "unknown":
        # The answer was lost: look at the records before saying anything.
        landed = [merged_into(client.get_record(entity_set, s)) == master_id for s in subs]
        if all(landed):
            status, error = "merged", None
        elif not any(landed):
            status, error = "failed", f"not applied ({outcome.message})"
        else:
            error = f"Dataverse applied only part of the change set: {outcome.message}"
    merge_store.finish_audit(mirror, audit_ids, status, error)
    if status != "merged":
        log.warning("%s group %s: merge %s: %s", table, group, status, error)
    return {**result, "outcome": status, "error": error}
