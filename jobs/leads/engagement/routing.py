"""Lead routing: give each unassigned open lead an owner, by the first rule it matches.

Only leads that are open and still held by the configured "unassigned" owner are routed; a lead a
person (or any other owner) holds is never moved. Rules are tried in file order; the first whose
conditions all hold decides:

- ``round_robin``: the team's eligible members in turn (oldest lead first), continuing from the
  member after the one who got the previous lead (``cursors``, kept by the caller across runs), so
  within a run the members' counts differ by at most one;
- ``fewest_open``: each lead to the member holding the fewest open leads at that moment (the leads
  routed earlier in the same run included; ties go to the member listed first);
- ``team`` / ``user``: the lead is owned by that team or user itself;
- ``queue``: the lead is put in that queue (``owner_type`` ``queue``); its owner does not change.

Leads the caller names in ``exclude`` (already in a queue: someone, or an earlier run, routed them
there) are left alone like a lead a person holds.

This module is pure: the service resolves names to ids against the org (users that are disabled or
are application users are not eligible members) and writes the result through ``ownerid``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.tomlfile import closest
from jobs.leads.engagement.config import Condition, RoutingConfig, RoutingRule

__all__ = ["ResolvedRule", "matches", "route_leads"]


@dataclass(frozen=True)
class ResolvedRule:
    """A rule with its target resolved against the org.

    Attributes:
        rule: the rule as written.
        owner_type: ``systemuser`` or ``team``: what the lead's owner becomes; ``queue``: the lead
            goes into a queue instead.
        candidates: for round_robin / fewest_open, the eligible members' ids in a stable order
            (by name); for team / user / queue, the one id.
        cursor_key: the key of this target's round-robin position (the team id).
    """

    rule: RoutingRule
    owner_type: str
    candidates: tuple[str, ...]
    cursor_key: str = ""


def _as_text(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.casefold()


def _test(column: pd.Series, condition: Condition) -> np.ndarray:
    if condition.present is not None:
        filled = column.notna() & _as_text(column).ne("").fillna(False)
        return (filled if condition.present else ~filled).to_numpy(dtype=bool)
    if condition.equals:
        hit = np.zeros(len(column), dtype=bool)
        for value in condition.equals:
            if isinstance(value, bool):
                flags = column.map(
                    lambda v: v if isinstance(v, bool | np.bool_) else None, na_action="ignore"
                )
                hit |= flags.eq(value).fillna(False).to_numpy(dtype=bool)
            elif isinstance(value, int | float):
                hit |= (
                    pd.to_numeric(column, errors="coerce").eq(float(value)).fillna(False).to_numpy(dtype=bool)
                )
            else:
                hit |= _as_text(column).eq(str(value).strip().casefold()).fillna(False).to_numpy(dtype=bool)
        return hit
    numbers = pd.to_numeric(column, errors="coerce")
    ok = numbers.notna()
    if condition.min_value is not None:
        ok &= numbers >= condition.min_value
    if condition.max_value is not None:
        ok &= numbers < condition.max_value
    return ok.fillna(False).to_numpy(dtype=bool)


def matches(leads: pd.DataFrame, rule: RoutingRule, config: RoutingConfig | None = None) -> np.ndarray:
    """Which leads a rule's conditions all hold for.

    Raises:
        ConfigError: a condition on a column the leads do not have (naming the file line).
    """
    hit = np.ones(len(leads), dtype=bool)
    for condition in rule.conditions:
        if condition.column not in leads.columns:
            near = closest(condition.column, [str(c) for c in leads.columns])
            message = f"rule `{rule.name}` tests `{condition.column}`, which the leads do not have"
            hint = (
                f"did you mean `{near[0]}`?"
                if near
                else "map the column in lead.toml, or use score, grade, sales_ready"
            )
            key = ("rule", rule.index, "when", condition.column)
            if config is not None:
                raise config.error(key, message, hint)
            raise ConfigError(message, key=".".join(map(str, key)), hint=hint)
        hit &= _test(leads[condition.column], condition)
    return hit


def route_leads(
    leads: pd.DataFrame,
    rules: Sequence[ResolvedRule],
    *,
    unassigned: tuple[str, str],
    open_counts: Mapping[str, int] | None = None,
    cursors: Mapping[str, int] | None = None,
    config: RoutingConfig | None = None,
    exclude: Collection[str] = (),
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Assign the unassigned open leads by the first matching rule.

    Args:
        leads: ``lead_id``, ``status``, ``owner_id``, ``owner_type`` (optional), ``created_on``, and
            every column the rules test (score results joined in).
        rules: the resolved rules, in order.
        unassigned: ``(owner_type, owner_id)`` of the owner that holds untaken leads.
        open_counts: open leads each owner holds now (for ``fewest_open``).
        cursors: per round-robin target, how many leads it has been given so far (the next lead
            goes to member ``cursor % len(members)``).
        config: the parsed file, so a rule on a missing column names its line.
        exclude: lead ids (lower case) never routed: they already sit in a queue.

    Returns:
        ``(assignments, cursors)``: assignments indexed by lead id (lower case) with ``owner_id``,
        ``owner_type``, ``previous_owner_id``, ``previous_owner_type`` and ``rule`` (its name); and
        the advanced cursors.
    """
    kind, holder = unassigned[0], str(unassigned[1]).lower()
    status = leads["status"].astype("string").str.lower().eq("open").fillna(False)
    held = leads["owner_id"].astype("string").str.lower().eq(holder).fillna(False)
    if "owner_type" in leads:
        held &= leads["owner_type"].astype("string").str.lower().eq(kind).fillna(True)
    free = ~leads["lead_id"].astype(str).str.lower().isin(set(exclude))
    pool = leads[(status & held & free).to_numpy()].copy()
    pool["_created"] = pd.to_datetime(pool.get("created_on"), utc=True, errors="coerce")
    pool["_id"] = pool["lead_id"].astype(str).str.lower()
    pool = pool.sort_values(["_created", "_id"], kind="stable", na_position="last")
    loads = {str(k).lower(): int(v) for k, v in (open_counts or {}).items()}
    moved = {str(k): int(v) for k, v in (cursors or {}).items()}
    taken = np.zeros(len(pool), dtype=bool)
    parts: list[pd.DataFrame] = []
    for resolved in rules:
        rule = resolved.rule
        hit = matches(pool, rule, config) & ~taken
        # A matched lead belongs to this rule even when its team has nobody eligible (the service
        # refuses such a rule up front): falling through to a later rule would surprise the reader.
        taken |= hit
        if not hit.any() or not resolved.candidates:
            continue
        chosen = pool[hit]
        members = list(resolved.candidates)
        if rule.assign == "round_robin":
            start = moved.get(resolved.cursor_key, 0)
            owners = [members[(start + k) % len(members)] for k in range(len(chosen))]
            moved[resolved.cursor_key] = start + len(chosen)
        elif rule.assign == "fewest_open":
            owners = []
            # Greedy and sequential on purpose: each pick changes the loads the next one compares.
            for _ in range(len(chosen)):
                pick = min(members, key=lambda m: (loads.get(m.lower(), 0), members.index(m)))
                loads[pick.lower()] = loads.get(pick.lower(), 0) + 1
                owners.append(pick)
        else:
            owners = [members[0]] * len(chosen)
        parts.append(
            pd.DataFrame(
                {
                    "owner_id": [o.lower() for o in owners],
                    "owner_type": resolved.owner_type,
                    "previous_owner_id": holder,
                    "previous_owner_type": kind,
                    "rule": rule.name,
                },
                index=pd.Index(chosen["_id"].to_numpy(), name="lead_id"),
            )
        )
    if not parts:
        empty = pd.DataFrame(
            {
                c: pd.Series(dtype=object)
                for c in ("owner_id", "owner_type", "previous_owner_id", "previous_owner_type", "rule")
            }
        )
        return empty.rename_axis("lead_id"), moved
    return pd.concat(parts), moved
