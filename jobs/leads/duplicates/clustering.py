"""Group matched pairs into duplicate groups and suggest a master record per group.

Pairs are edges of a graph; connected components are candidate groups. Plain connected components
chain: A~B and B~C puts A and C together even when they share nothing, and a few weak links can
glue dozens of records. So every group is checked for *cohesion*: the sum of the match scores of
its pairs divided by the number of pairs it would have if everyone matched everyone
(``n (n - 1) / 2``). A pair group has cohesion = its score; a triangle of strong pairs is near 1; a
chain of five records reaches at most 0.4. A group below ``min_cohesion`` is split by removing its
weakest links (all edges at the lowest score) and checking the parts again, until every part is
cohesive or a pair. Records matched with certainty (score >= ``CERTAIN``, e.g. exact copies) are
one node for this check: a set of 500 identical leads is one group, not a "chain".

The master record of a group is chosen by an ordered list of preferences over a records frame
(best first, ties broken by the next): ``"completeness"`` (most non-empty columns), or any column
of the records frame, higher/later values preferred (``"has_orders"``, ``"modified_on"``), or
``"-column"`` for lower/earlier preferred (``"-created_on"``: the oldest record). Remaining ties go
to the smallest id, so the choice is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from core.errors import ConfigError
from core.tomlfile import closest

__all__ = ["CLUSTER_COLUMNS", "DEFAULT_MIN_COHESION", "cluster"]

DEFAULT_MIN_COHESION = 0.5
"""Lowest cohesion a group of three or more may have; 0.5 lets a group miss up to half its
possible links (blocking does not compare every pair) but splits chains of four or more weak
links."""

CERTAIN = 0.999
"""A pair scoring at least this is the same entity for certain (identical records score 1.0):
such records are grouped together however many there are, before cohesion is checked."""

CLUSTER_COLUMNS = ["record_id", "cluster_id", "cluster_size", "cohesion", "master_id", "is_master"]


def _components(nodes: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(first)), (first, second)), shape=(nodes, nodes))
    return connected_components(graph, directed=False)[1]


def _cohesion(size: int, score_sum: float) -> float:
    return 1.0 if size < 2 else score_sum / (size * (size - 1) / 2)


def _weighted(nodes: np.ndarray, score_sum: float, weight: np.ndarray) -> tuple[int, float]:
    """Records in ``nodes`` and their cohesion: a node of ``w`` certain copies brings ``w``
    records and its ``w (w - 1) / 2`` certain pairs (score 1), as if every pair had been compared."""
    w = weight[nodes]
    records = int(w.sum())
    return records, _cohesion(records, score_sum + float((w * (w - 1) / 2).sum()))


def _split(
    members: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    score: np.ndarray,
    min_cohesion: float,
    weight: np.ndarray,
) -> list[tuple[np.ndarray, float]]:
    """Split one group until each part is cohesive; returns (members, cohesion) per part."""
    done: list[tuple[np.ndarray, float]] = []
    stack = [(members, first, second, score)]
    while stack:
        nodes, a, b, s = stack.pop()
        records, cohesion = _weighted(nodes, float(s.sum()), weight)
        if len(nodes) < 2:
            continue  # a node left alone is in no group here (a certain set is added back later)
        if records <= 2 or cohesion >= min_cohesion:
            done.append((nodes, cohesion))
            continue
        keep = s > s.min()
        a, b, s = a[keep], b[keep], s[keep]
        nodes = np.sort(nodes)
        la, lb = np.searchsorted(nodes, a), np.searchsorted(nodes, b)
        labels = _components(len(nodes), la, lb)
        for label in np.unique(labels):
            part = labels == label
            if part.sum() < 2:
                continue  # a record left alone is no longer a duplicate of anyone here
            inside = part[la] & part[lb]
            stack.append((nodes[part], a[inside], b[inside], s[inside]))
    return done


def _node_groups(
    nodes: int,
    first: np.ndarray,
    second: np.ndarray,
    score: np.ndarray,
    min_cohesion: float,
    weight: np.ndarray,
) -> list[tuple[np.ndarray, float]]:
    """Connected components of the node graph, each split until cohesive; (members, cohesion) each."""
    if len(first) == 0:
        return []
    labels = _components(nodes, first, second)
    node_order = np.argsort(labels, kind="stable")
    bounds = np.cumsum(np.concatenate([[0], np.bincount(labels)]))
    edge_label = labels[first]
    edge_order = np.argsort(edge_label, kind="stable")
    edge_bounds = np.cumsum(np.concatenate([[0], np.bincount(edge_label, minlength=len(bounds) - 1)]))
    groups: list[tuple[np.ndarray, float]] = []
    for label in range(len(bounds) - 1):
        members = node_order[bounds[label] : bounds[label + 1]]
        if len(members) < 2:
            continue
        chosen = edge_order[edge_bounds[label] : edge_bounds[label + 1]]
        groups.extend(_split(members, first[chosen], second[chosen], score[chosen], min_cohesion, weight))
    return groups


def _master_order(
    frame: pd.DataFrame, records: pd.DataFrame | None, id_column: str | None, master_by: Sequence[str]
) -> tuple[pd.DataFrame, list[str], list[bool]]:
    """Add the master-preference columns to ``frame`` (one row per clustered record)."""
    sort_columns: list[str] = []
    ascending: list[bool] = []
    if records is None:
        return frame, sort_columns, ascending
    if id_column is None or id_column not in records.columns:
        near = closest(str(id_column), map(str, records.columns))
        raise ConfigError(
            f"id column {id_column!r} is not in the records passed for master selection",
            key="id_column",
            hint=f"did you mean {near[0]!r}?" if near else None,
        )
    indexed = records.drop_duplicates(id_column).set_index(id_column)
    indexed = indexed[indexed.index.isin(frame["record_id"])]
    extra = pd.DataFrame(index=indexed.index)
    for position, preference in enumerate(master_by):
        descending = not preference.startswith("-")
        name = preference.lstrip("-")
        column = f"_pref{position}"
        if name == "completeness":
            filled = indexed.notna() & indexed.astype(str).apply(lambda c: c.str.strip() != "")
            extra[column] = filled.sum(axis=1)
        elif name in indexed.columns:
            values = indexed[name]
            if values.dtype == object:
                # Dates written as text and yes/no flags still sort the way a person expects.
                as_dates = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
                values = as_dates if as_dates.notna().sum() >= values.notna().sum() else values
            extra[column] = values
        else:
            near = closest(name, [*map(str, indexed.columns), "completeness"])
            raise ConfigError(
                f"master preference {preference!r} is neither 'completeness' nor a column of the records",
                key="cluster.master",
                hint=f"did you mean {near[0]!r}?" if near else "add the column to the records frame",
            )
        sort_columns.append(column)
        ascending.append(not descending)
    merged = frame.join(extra, on="record_id")
    return merged, sort_columns, ascending


def cluster(
    pairs: pd.DataFrame,
    *,
    threshold: float | None = None,
    min_cohesion: float = DEFAULT_MIN_COHESION,
    records: pd.DataFrame | None = None,
    id_column: str | None = None,
    master_by: Sequence[str] = ("completeness", "modified_on"),
) -> pd.DataFrame:
    """Group duplicate pairs into groups, guarding against chains of weak links, and pick masters.

    Args:
        pairs: pairs with ``id_left``, ``id_right`` and ``score`` (as :func:`find_duplicates` returns).
        threshold: ignore pairs scoring below this; None keeps every pair given.
        min_cohesion: the lowest cohesion a group of three or more may keep (see module docstring).
        records: the records, for choosing masters; None picks the smallest id of each group.
        id_column: the id column of ``records``.
        master_by: master preferences, best first (see module docstring).

    Returns:
        One row per record in a group of two or more: ``record_id``, ``cluster_id`` (0, 1, ...,
        largest groups first), ``cluster_size``, ``cohesion``, ``master_id`` and ``is_master``.
        Records in no pair are not listed.

    Raises:
        ConfigError: a missing pair column, a master preference that is not a column, or a
            min_cohesion outside 0..1.
    """
    missing = [c for c in ("id_left", "id_right", "score") if c not in pairs.columns]
    if missing:
        raise ConfigError(
            f"pairs lack column(s) {', '.join(missing)}",
            hint="pass the frame find_duplicates or link_records returned",
        )
    if not 0.0 <= float(min_cohesion) <= 1.0:
        raise ConfigError(
            f"min_cohesion {min_cohesion!r} must be between 0 and 1", key="cluster.min_cohesion"
        )
    edges = pairs if threshold is None else pairs[pairs["score"] >= threshold]
    edges = edges[edges["id_left"] != edges["id_right"]]
    if edges.empty:
        return pd.DataFrame(columns=CLUSTER_COLUMNS)
    codes, ids = pd.factorize(pd.concat([edges["id_left"], edges["id_right"]], ignore_index=True))
    first, second = codes[: len(edges)].astype(np.int64), codes[len(edges) :].astype(np.int64)
    score = edges["score"].to_numpy(dtype=np.float64)
    # Records matched with certainty are one entity whatever their number: contract each such set
    # to one node first. Blocking compares a large set of identical records only within a window,
    # so counted as separate nodes they would look like a loose chain and be split apart.
    core = _components(len(ids), first[score >= CERTAIN], second[score >= CERTAIN])
    node_of = core  # record -> node (its certain set)
    members_of = pd.Series(np.arange(len(ids))).groupby(node_of).apply(lambda m: m.to_numpy())
    first, second = node_of[first], node_of[second]
    between = first != second
    contracted = (
        pd.DataFrame({"a": np.minimum(first, second), "b": np.maximum(first, second), "s": score})[between]
        .groupby(["a", "b"], sort=False)["s"]
        .max()
        .reset_index()
    )
    nodes = int(node_of.max()) + 1
    sizes = np.bincount(node_of, minlength=nodes)
    groups = _node_groups(
        nodes,
        contracted["a"].to_numpy(np.int64),
        contracted["b"].to_numpy(np.int64),
        contracted["s"].to_numpy(np.float64),
        min_cohesion,
        sizes,
    )
    grouped = np.zeros(nodes, dtype=bool)
    for members, _ in groups:
        grouped[members] = True
    groups.extend((np.array([n]), 1.0) for n in np.flatnonzero(~grouped & (sizes >= 2)))
    groups = [(np.concatenate([members_of[n] for n in members]), cohesion) for members, cohesion in groups]
    if not groups:
        return pd.DataFrame(columns=CLUSTER_COLUMNS)

    # The ids as a NumPy array (Python str for text): the smallest of each group is then a NumPy
    # reduction, where a pyarrow-backed Index costs ~0.1 ms a group (0.3 s for 2,300 groups). Text
    # orders alike either way (UTF-8 bytes sort as their code points).
    id_values = np.asarray(ids.to_numpy())
    groups.sort(key=lambda g: (-len(g[0]), str(id_values[g[0]].min()) if len(g[0]) else ""))
    member = np.concatenate([g[0] for g in groups])
    group_id = np.repeat(np.arange(len(groups)), [len(g[0]) for g in groups])
    frame = pd.DataFrame(
        {
            "record_id": ids[member],
            "cluster_id": group_id,
            "cluster_size": np.repeat([len(g[0]) for g in groups], [len(g[0]) for g in groups]),
            "cohesion": np.repeat([g[1] for g in groups], [len(g[0]) for g in groups]),
        }
    )
    ranked, sort_columns, ascending = _master_order(frame, records, id_column, master_by)
    ranked = ranked.sort_values(
        ["cluster_id", *sort_columns, "record_id"],
        ascending=[True, *ascending, True],
        na_position="last",
        kind="stable",
    )
    masters = ranked.drop_duplicates("cluster_id").set_index("cluster_id")["record_id"]
    frame["master_id"] = frame["cluster_id"].map(masters)
    frame["is_master"] = frame["record_id"] == frame["master_id"]
    return frame[CLUSTER_COLUMNS].sort_values(["cluster_id", "record_id"], ignore_index=True)
