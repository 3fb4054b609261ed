"""HTML building blocks: the page frame, tables, figures and forms (every value escaped).

No template engine: the pages are a handful of tables, figures and charts, and building them from
escaped strings keeps the console free of a dependency and of any way to render unescaped data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

__all__ = ["NAV", "card", "esc", "figure", "form_button", "link", "page", "table"]

NAV: list[tuple[str, str]] = [
    ("/", "Overview"),
    ("/runs", "Runs"),
    ("/leads", "Leads"),
    ("/duplicates", "Duplicates"),
    ("/customers", "Customers"),
    ("/config", "Configuration"),
]


def esc(value: Any) -> str:
    """Text for HTML: None and NaN as a dash, numbers grouped, everything escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, list | tuple):
        return ", ".join(esc(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{esc(k)}: {esc(v)}" for k, v in value.items())
    return escape(str(value))


def link(href: str, text: Any, **query: Any) -> str:
    """An anchor; ``query`` is URL-encoded onto ``href``."""
    target = href + (
        "?" + urlencode({k: v for k, v in query.items() if v not in (None, "")}) if query else ""
    )
    return f'<a href="{escape(target)}">{esc(text)}</a>'


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    headers: Mapping[str, str] | None = None,
    raw: Iterable[str] = (),
    classes: Mapping[str, str] | None = None,
    empty: str = "Nothing to show.",
) -> str:
    """A table of ``rows`` (dicts); columns in ``raw`` hold HTML built by this module (links)."""
    if not rows:
        return f'<p class="muted">{esc(empty)}</p>'
    raw = set(raw)
    headers = headers or {}
    classes = dict(classes or {})
    for column in columns:
        if column not in classes and all(
            isinstance(r.get(column), int | float) and not isinstance(r.get(column), bool)
            for r in rows
            if r.get(column) is not None
        ):
            classes[column] = "num"
    head = "".join(
        f'<th class="{classes.get(c, "")}">{esc(headers.get(c, c.replace("_", " ")))}</th>' for c in columns
    )
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            text = value if column in raw else esc(value)
            css = classes.get(column, "")
            if column == "outcome" and isinstance(value, str):
                css = f"{css} {escape(value)}".strip()
            cells.append(f'<td class="{css}">{text}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def card(title: str, body: str, *, wide: bool = False, note: str | None = None) -> str:
    """A titled box; ``body`` is HTML."""
    extra = f'<p class="muted">{esc(note)}</p>' if note else ""
    return f'<section class="card{" wide" if wide else ""}"><h2>{esc(title)}</h2>{body}{extra}</section>'


def figure(label: str, value: Any, note: str | None = None) -> str:
    """One headline figure."""
    extra = f'<p class="muted">{esc(note)}</p>' if note else ""
    body = f'<h2>{esc(label)}</h2><div class="figure">{esc(value)}</div>{extra}'
    return f'<section class="card fig">{body}</section>'


def form_button(
    action: str, label: str, csrf: str, *, fields: Mapping[str, Any] | None = None, css: str = ""
) -> str:
    """A POST form of one button (every state change is a POST carrying the CSRF token)."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(str(v))}">'
        for k, v in (fields or {}).items()
    )
    return (
        f'<form class="inline" method="post" action="{escape(action)}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">{hidden}'
        f'<button type="submit" class="{escape(css)}">{esc(label)}</button></form>'
    )


def page(
    title: str, path: str, body: str, *, user: str | None, csrf: str | None, api: str | None = None
) -> str:
    """The whole document: header, navigation, the body, a link to the page's JSON."""
    nav = "".join(
        f'<a href="{href}" class="{"active" if _active(path, href) else ""}">{escape(name)}</a>'
        for href, name in NAV
    )
    who = ""
    if user:
        out = (
            f'<form class="inline" method="post" action="/logout"><input type="hidden" name="csrf" '
            f'value="{escape(csrf or "")}"><button type="submit">Sign out</button></form>'
            if csrf
            else ""
        )
        who = f'<div class="who"><span>{esc(user)}</span>{out}</div>'
    api_link = f'<p class="muted">This page as JSON: {link(api, api)}</p>' if api else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · dvsync</title>"
        '<link rel="stylesheet" href="/static/console.css"><link rel="icon" href="data:,"></head><body>'
        f'<header><span class="brand">dvsync</span><nav>{nav}</nav>{who}</header>'
        f"<main><h1>{esc(title)}</h1>{body}{api_link}</main></body></html>"
    )


def _active(path: str, href: str) -> bool:
    return path == "/" if href == "/" else path == href or path.startswith(href + "/")
