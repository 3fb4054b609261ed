"""``dvsync demo``: the whole product in one command, against the bundled sandbox.

It starts the sandbox in-process (small size, fixed seed, a fresh data directory), provisions the
output columns, runs the pipeline (sync, scoring, duplicates, RFM, CLV, write-back), shows what was
computed and written, then runs again to show that an incremental sync with nothing new writes
nothing.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from connector.sandbox import Sandbox
from core.defaults import mappings_dir
from jobs.cli.common import console, render_table
from jobs.cli.render import progress_for, render_run
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import PipelineResult, run_pipeline
from jobs.service.provision import provision
from jobs.service.settings import Settings
from jobs.service.settings_load import load_settings
from jobs.service.views import ViewsConfig, load_views, provision_customizations, read_view

__all__ = ["MAPPINGS_DIR", "demo_settings", "run_demo", "showcase"]

MAPPINGS_DIR = mappings_dir()
"""The mapping files shipped with dvsync (they fit a standard Sales org and the sandbox)."""


def demo_settings(data_dir: Path, url: str, token: str, *, mappings_dir: Path = MAPPINGS_DIR) -> Settings:
    """Write ``config.toml`` for the sandbox into ``data_dir`` and load it (the token stays in memory)."""
    config = data_dir / "config.toml"
    config.write_text(
        "\n".join(
            [
                "# Written by `dvsync demo` for its sandbox; the token is passed in memory, not stored.",
                "[dataverse]",
                f'url = "{url}"',
                "[auth]",
                'mode = "token"',
                "[mirror]",
                f'path = "{(data_dir / "mirror.sqlite").as_posix()}"',
                "[mappings]",
                f'dir = "{mappings_dir.as_posix()}"',
                "[writeback]",
                "dry_run = false",
                'solution = "dvsync"',
                'publisher_prefix = "dvs"',
                "",
            ]
        ),
        encoding="utf-8",
    )
    return load_settings(config, env={"DVSYNC__AUTH__TOKEN": token})


def _first_lines(text: Any, count: int = 2) -> str:
    if not isinstance(text, str):
        return ""
    return "; ".join(text.splitlines()[:count])


def showcase(mirror: Mirror, *, top: int = 10) -> dict[str, Any]:
    """What Dynamics now holds in the output columns (read from the mirror after the write-back).

    Returns:
        ``top_leads`` (name, company, score, grade, reasons), ``existing_customers`` (how many open
        leads already are a contact / an account, and a few examples), ``duplicate_groups`` (count
        per table and a few examples), ``segments`` (customers per segment) and ``top_customers`` (by
        predicted value).
    """
    layouts = mirror.layouts()
    shown: dict[str, Any] = {}
    if "lead" in layouts:
        leads = mirror.read_frame("lead")
        if "out_score" in leads:
            best = leads.dropna(subset=["out_score"]).sort_values(
                ["out_score", "lead_id"], ascending=[False, True]
            )
            shown["top_leads"] = [
                {
                    "lead": f"{r.get('first_name') or ''} {r.get('last_name') or ''}".strip(),
                    "company": r.get("company"),
                    "score": int(r["out_score"]),
                    "grade": r.get("out_grade"),
                    "top reason": _first_lines(r.get("out_factors"), 1),
                }
                for _, r in best.head(top).iterrows()
            ]
        if "out_existing_contact" in leads:
            shown["existing_customers"] = _existing_customers(leads)
    groups: dict[str, int] = {}
    examples: list[dict[str, Any]] = []
    for table, label in (("lead", "email"), ("contact", "email"), ("account", "name")):
        if table not in layouts:
            continue
        frame = mirror.read_frame(table)
        if "out_duplicate_group" not in frame:
            continue
        grouped = frame.dropna(subset=["out_duplicate_group"])
        groups[table] = int(grouped["out_duplicate_group"].nunique())
        if table == "lead":
            for code, members in list(grouped.groupby("out_duplicate_group"))[:3]:
                examples.append(
                    {
                        "group": code,
                        "records": [
                            " ".join(
                                [
                                    str(m.get("first_name") or ""),
                                    str(m.get("last_name") or ""),
                                    f"<{m.get(label) or ''}>",
                                ]
                            ).strip()
                            for _, m in members.iterrows()
                        ],
                    }
                )
    shown["duplicate_groups"] = {"groups": groups, "examples": examples}
    customers = []
    for table in ("account", "contact"):
        if table not in layouts:
            continue
        frame = mirror.read_frame(table)
        name = (
            frame["name"]
            if "name" in frame
            else (frame.get("first_name", "").fillna("") + " " + frame.get("last_name", "").fillna(""))
        )
        customers.append(frame.assign(customer=name, table=table))
    if customers:
        everyone = pd.concat(customers, ignore_index=True)
        if "out_rfm_segment" in everyone:
            counts = everyone["out_rfm_segment"].dropna().value_counts()
            shown["segments"] = {str(k): int(v) for k, v in counts.items()}
        if "out_clv_predicted" in everyone:
            best = everyone.dropna(subset=["out_clv_predicted"]).sort_values(
                "out_clv_predicted", ascending=False
            )
            shown["top_customers"] = [
                {
                    "customer": str(r["customer"]).strip(),
                    "type": r["table"],
                    "predicted_12m": round(float(r["out_clv_predicted"]), 2),
                    "still_active_%": None
                    if pd.isna(r.get("out_p_alive"))
                    else round(float(r["out_p_alive"])),
                    "segment": r.get("out_rfm_segment"),
                }
                for _, r in best.head(top).iterrows()
            ]
    return shown


def _existing_customers(leads: pd.DataFrame, *, examples: int = 5) -> dict[str, Any]:
    """How many leads already are a contact / an account, and the surest few that are a contact."""
    counts = {
        table: int(leads[f"out_existing_{table}"].notna().sum())
        for table in ("contact", "account")
        if f"out_existing_{table}" in leads
    }
    known = leads.dropna(subset=["out_existing_contact"])
    if "out_existing_contact_score" in known:
        known = known.sort_values(["out_existing_contact_score", "lead_id"], ascending=[False, True])
    rows = [
        {
            "lead": f"{r.get('first_name') or ''} {r.get('last_name') or ''}".strip(),
            "already contact": r["out_existing_contact"],
            "match %": None
            if pd.isna(r.get("out_existing_contact_score"))
            else round(float(r["out_existing_contact_score"])),
            "already account": r.get("out_existing_account")
            if pd.notna(r.get("out_existing_account"))
            else "",
        }
        for _, r in known.head(examples).iterrows()
    ]
    return {"counts": counts, "examples": rows}


def _print_showcase(shown: dict[str, Any], out: Console) -> None:
    if shown.get("top_leads"):
        rows = shown["top_leads"]
        render_table("Top open leads (score written to dvs_leadscore)", rows, list(rows[0]), out)
    existing = shown.get("existing_customers", {})
    if existing.get("examples"):
        counts = existing["counts"]
        title = (
            f"Open leads already in Dynamics: {counts.get('contact', 0)} as a contact, "
            f"{counts.get('account', 0)} as an account (dvs_existingcontact, dvs_existingaccount)"
        )
        render_table(title, existing["examples"], list(existing["examples"][0]), out)
    dup = shown.get("duplicate_groups", {})
    if dup.get("groups"):
        counts = ", ".join(f"{n} {t} groups" for t, n in dup["groups"].items())
        out.print(f"Duplicate groups: {counts}", markup=False)
        for example in dup.get("examples", []):
            out.print(f"  {example['group']}: " + " | ".join(example["records"]), markup=False)
    if shown.get("segments"):
        rows = [{"segment": k, "customers": v} for k, v in shown["segments"].items()]
        render_table("RFM segments", rows, ["segment", "customers"], out)
    if shown.get("top_customers"):
        rows = shown["top_customers"]
        render_table("Top customers by predicted value (next 12 months)", rows, list(rows[0]), out)


# The views a salesperson opens first, shown at the end of the demo as Dynamics returns them.
_SALES_VIEWS = ("hottest_open_leads", "accounts_by_value")


def _what_sales_see(client: Any, views: ViewsConfig, out: Console) -> dict[str, list[dict[str, str]]]:
    out.rule("What sales now see in Dynamics")
    seen: dict[str, list[dict[str, str]]] = {}
    for view in views.views:
        if view.key in _SALES_VIEWS:
            rows = [{k: _first_lines(v, 1) for k, v in row.items()} for row in read_view(client, view, top=5)]
            seen[view.name] = rows
            if rows:
                render_table(f'View "{view.name}" on {view.table}', rows, list(rows[0]), out)
    return seen


def run_demo(
    *,
    data_dir: str | Path | None = None,
    size: str = "small",
    seed: int = 0,
    out: Console | None = None,
    quiet: bool = False,
    progress: bool = True,
    keep: bool = False,
    then: Callable[[Settings], None] | None = None,
) -> dict[str, Any]:
    """Start the sandbox, provision, run twice, and report.

    Args:
        data_dir: where the sandbox data, config and mirror go (an existing sandbox there is
            reused, and kept); by default a fresh temporary directory, removed at the end.
        keep: keep the temporary directory (its path is printed and returned).
        size: the sandbox size (``small`` for the demo).
        seed: the sandbox seed.
        out: where to print; None prints to stdout.
        quiet: print nothing (``--json``).
        progress: show progress bars on a terminal.
        then: called with the demo's settings after the runs, while the sandbox still serves
            (``dvsync demo`` serves the console from it until Ctrl-C).

    Returns:
        ``data_dir``, ``provisioned`` (columns created), ``first`` and ``second`` (the two runs'
        reports) and ``shown`` (see :func:`showcase`).
    """
    out = out or console(quiet=quiet)
    temporary = not data_dir
    directory = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="dvsync-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        return _demo(directory, size=size, seed=seed, out=out, quiet=quiet, progress=progress, then=then)
    finally:
        if temporary and not keep:
            # The sandbox and mirror take ~100 MB; a demo leaves nothing behind unless asked to.
            shutil.rmtree(directory, ignore_errors=True)
        elif temporary:
            out.print(f"Kept the demo's sandbox, config and mirror in {directory}", markup=False)


def _demo(
    directory: Path,
    *,
    size: str,
    seed: int,
    out: Console,
    quiet: bool,
    progress: bool,
    then: Callable[[Settings], None] | None,
) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)
    out.print(f"Starting the sandbox ({size}, seed {seed}) in {directory} ...", markup=False)
    sandbox = Sandbox(directory / "sandbox", size=size, seed=seed, token=token).start()
    try:
        settings = demo_settings(directory, sandbox.url, token)
        mappings = load_mappings(settings.mappings.dir, prefix=settings.writeback.publisher_prefix)
        with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
            report = provision(client, mappings, solution=settings.writeback.solution)
            created = report.as_dict().get("created", 0)
            views = load_views(Path(settings.mappings.dir) / "views.toml", mappings)
            made = provision_customizations(client, views, solution=settings.writeback.solution, forms=True)
            kinds = Counter(a.kind for a in made.actions if a.status in ("created", "added"))
            out.print(
                f"Provisioned {created} output column(s), {kinds['view']} view(s), {kinds['chart']} "
                f"chart(s) and the dvsync section on {kinds['form']} form(s) in solution dvsync.",
                markup=False,
            )
            runs: list[PipelineResult] = []
            first = "First run: full sync, all jobs, write-back (to the demo's own sandbox)"
            for label in (first, "Second run: nothing changed"):
                out.rule(label)
                with progress_for(progress and not quiet) as bar:
                    # Writes on purpose: this sandbox exists only for the demo (a real `dvsync run`
                    # plans unless told --no-dry-run).
                    result = run_pipeline(client, mirror, mappings, settings, dry_run=False, progress=bar)
                render_run(result, out)
                runs.append(result)
                if len(runs) == 1:
                    shown = showcase(mirror)
                    _print_showcase(shown, out)
            second = runs[1]
            written = sum(t["written"] for t in second.tables.values())
            read = sum(t["read"] for t in second.tables.values())
            out.print(
                f"The second run read {read} changed record(s) (our own writes coming back through change "
                f"tracking) and wrote {written}: unchanged results are never rewritten.",
                markup=False,
            )
            seen = _what_sales_see(client, views, out)
        report = {
            "data_dir": str(directory),
            "provisioned": created,
            "first": runs[0].as_dict(),
            "second": runs[1].as_dict(),
            "shown": shown,
            "views": seen,
        }
        if then is not None:
            then(settings)
        return report
    finally:
        sandbox.stop()
