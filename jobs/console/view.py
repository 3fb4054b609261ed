"""One request as the page functions see it: the console's state, the signed-in user, the query."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobs.console.context import ConsoleContext
from jobs.console.html import page

__all__ = ["View"]


@dataclass
class View:
    """One request as the pages see it."""

    ctx: ConsoleContext
    user: str
    csrf: str
    path: str
    query: dict[str, str] = field(default_factory=dict)

    def render(self, title: str, body: str, api: str | None) -> str:
        """The full page."""
        return page(title, self.path, body, user=self.user, csrf=self.csrf or None, api=api)
