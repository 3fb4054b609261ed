"""The data behind the Duplicates page: the groups Dynamics shows, and per group the evidence.

Groups are read from the mirror's ``out_duplicate_group`` / ``out_duplicate_score`` /
``out_suggested_master`` columns (what the duplicates job wrote). A group's evidence is computed
when the group is opened, with the same normalisation and comparison kinds the job uses
(``mappings/duplicates.toml``): each field of each member against the suggested master, as the
comparison level (exact, high, medium, low; missing when either side is empty) and the similarity.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import ConfigError
from jobs.console.context import ConsoleContext
from jobs.console.data_results import read_columns
from jobs.leads.duplicates.comparisons import KINDS, compare_values, prepare
from jobs.leads.duplicates.config import load_duplicate_config

__all__ = ["DUPLICATE_TABLES", "GROUPS_PAGE_SIZE", "duplicate_group", "duplicates"]

DUPLICATE_TABLES = ("lead", "contact", "account")
GROUPS_PAGE_SIZE = 50
_LABELS = {
    "lead": ["first_name", "last_name", "email"],
    "contact": ["first_name", "last_name", "email"],
    "account": ["name", "city"],
}
_OUT = ["out_duplicate_group", "out_duplicate_score", "out_suggested_master"]


def _config(ctx: ConsoleContext, table: str) -> tuple[dict[str, str], str, str | None]:
    """The compared fields and their kinds for ``table``, its phone region, and the problem if the
    file cannot be read (shown on the page instead of the evidence)."""
    path = Path(ctx.settings.mappings.dir) / "duplicates.toml"
    try:
        config = load_duplicate_config(path, table)
    except ConfigError as exc:
        return {}, "US", str(exc)
    return {column: spec.kind for column, spec in config.fields.items()}, config.phone_region, None


def _label(row: pd.Series, table: str) -> str:
    parts = [str(row.get(c)) for c in _LABELS[table] if row.get(c) is not None and not pd.isna(row.get(c))]
    return " ".join(parts) or str(row["id"])


def _grouped(ctx: ConsoleContext, table: str) -> pd.DataFrame:
    def build() -> pd.DataFrame:
        frame = read_columns(ctx, table, [*_LABELS[table], *_OUT])
        if frame.empty or "out_duplicate_group" not in frame:
            return pd.DataFrame()
        return frame.dropna(subset=["out_duplicate_group"])

    return ctx.cached(f"dup:{table}", build)


def duplicates(ctx: ConsoleContext, table: str, *, page: int = 1) -> dict[str, Any]:
    """Groups of ``table`` (largest match score first), one page of them, with counts per table."""
    counts = {
        t: int(_grouped(ctx, t)["out_duplicate_group"].nunique()) if len(_grouped(ctx, t)) else 0
        for t in DUPLICATE_TABLES
    }
    frame = _grouped(ctx, table)
    groups: list[dict[str, Any]] = []
    if len(frame):
        frame = frame.assign(label=frame.apply(lambda r: _label(r, table), axis=1))
        for code, members in frame.groupby("out_duplicate_group"):
            master_id = members["out_suggested_master"].dropna().astype(str).str.lower()
            master = members[members["id"].astype(str).str.lower().isin(set(master_id))]
            groups.append(
                {
                    "group": str(code),
                    "records": len(members),
                    "score": round(
                        float(pd.to_numeric(members["out_duplicate_score"], errors="coerce").max()), 3
                    ),
                    "suggested_master": master["label"].iloc[0] if len(master) else None,
                    "members": " · ".join(members["label"].head(4)),
                }
            )
    groups.sort(key=lambda g: (-g["score"], g["group"]))
    pages = max(1, math.ceil(len(groups) / GROUPS_PAGE_SIZE))
    page = min(max(page, 1), pages)
    return {
        "table": table,
        "counts": counts,
        "groups_total": len(groups),
        "page": page,
        "pages": pages,
        "groups": groups[(page - 1) * GROUPS_PAGE_SIZE : page * GROUPS_PAGE_SIZE],
        "sizes": pd.Series([g["records"] for g in groups], dtype=int).value_counts().sort_index().to_dict()
        if groups
        else {},
    }


def duplicate_group(ctx: ConsoleContext, table: str, code: str) -> dict[str, Any] | None:
    """One group: its members side by side and, per field, each member's evidence against the master."""
    grouped = _grouped(ctx, table)
    if grouped.empty:
        return None
    ids = grouped.loc[grouped["out_duplicate_group"] == code, "id"].astype(str).str.lower()
    if ids.empty:
        return None
    kinds, region, problem = _config(ctx, table)
    frame = read_columns(ctx, table, [*kinds, *_LABELS[table], *_OUT])
    members = frame[frame["id"].astype(str).str.lower().isin(set(ids))].reset_index(drop=True)
    held = members["out_suggested_master"].dropna().astype(str).str.lower()
    master_id = held.mode().iloc[0] if len(held) else str(members["id"].iloc[0]).lower()
    is_master = members["id"].astype(str).str.lower().eq(master_id)
    order = pd.concat([members[is_master], members[~is_master]]).reset_index(drop=True)
    fields = []
    for column, kind in kinds.items():
        if column not in order:
            continue
        values = order[column]
        normal = prepare(values.astype(object), kind, region)
        evidence = []
        for i in range(len(order)):
            a, b = normal.iloc[0], normal.iloc[i]
            if i == 0:
                evidence.append({"level": "master", "similarity": None})
            elif a is None or b is None or pd.isna(a) or pd.isna(b) or a == "" or b == "":
                evidence.append({"level": "missing", "similarity": None})
            else:
                similarity, level = compare_values(kind, [a], [b])
                evidence.append(
                    {"level": KINDS[kind].levels[int(level[0])], "similarity": round(float(similarity[0]), 3)}
                )
        fields.append(
            {
                "field": column,
                "kind": kind,
                "values": [None if pd.isna(v) else str(v) for v in values],
                "evidence": evidence,
            }
        )
    return {
        "table": table,
        "group": code,
        "suggested_master": master_id,
        "records": [
            {
                "id": str(r["id"]),
                "label": _label(r, table),
                "master": bool(str(r["id"]).lower() == master_id),
                "score": None
                if pd.isna(r["out_duplicate_score"])
                else round(float(r["out_duplicate_score"]), 3),
            }
            for _, r in order.iterrows()
        ],
        "fields": fields,
        "evidence_problem": problem,
        "decisions": "not available yet: merge decisions arrive with the merge feature (issue 12)",
    }
