"""TOML files that remember where each key was written, so errors can name the file and the line.

Every consultant-edited file (``mappings/*.toml``, ``config.toml``) is read through ``load_toml``;
validation code then raises ``doc.error(key, message, hint)`` and the user reads
``mappings/lead.toml:12 [fields.email]: no column `emailadress1` on lead (did you mean
`emailaddress1`?)``. ``tomllib`` parses; the small scanner here only finds line numbers, which
``tomllib`` does not expose.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError

__all__ = ["KeyPath", "TomlFile", "closest", "load_toml", "parse_toml"]

KeyPath = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
# A bare, "basic" or 'literal' key, and a dotted chain of them before `=`.
_SIMPLE_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_SIMPLE_KEY}(?:\s*\.\s*{_SIMPLE_KEY})*)\s*=")
_PART = re.compile(_SIMPLE_KEY)
_TOMLLIB_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


def _split_key(text: str) -> tuple[str, ...]:
    parts = []
    for raw in _PART.findall(text):
        if raw.startswith('"'):
            parts.append(raw[1:-1].encode().decode("unicode_escape"))
        elif raw.startswith("'"):
            parts.append(raw[1:-1])
        else:
            parts.append(raw)
    return tuple(parts)


def _scan_lines(text: str) -> dict[KeyPath, int]:
    """Map every key path defined in ``text`` to its 1-based line (headers included)."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    array_counts: dict[tuple[str, ...], int] = {}
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            names = _split_key(header.group(2))
            if header.group(1) == "[[":
                index = array_counts.get(names, 0)
                array_counts[names] = index + 1
                table = (*names, index)
                lines.setdefault(names, number)
            else:
                table = names
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            path = (*table, *_split_key(key.group(1)))
            lines.setdefault(path, number)
            rest = line[key.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_multiline = quote
    return lines


@dataclass(frozen=True)
class TomlFile:
    """A parsed TOML document and the line each key was written on."""

    path: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict, repr=False)

    def line_of(self, key: str | KeyPath) -> int | None:
        """Return the line of ``key`` or, failing that, of its closest enclosing key or table."""
        path = _as_path(key)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def error(self, key: str | KeyPath, message: str, hint: str | None = None) -> ConfigError:
        """Build (not raise) a ConfigError that points at ``key`` in this file."""
        path = _as_path(key)
        dotted = ".".join(str(p) for p in path) if path else None
        return ConfigError(message, file=self.path, line=self.line_of(path), key=dotted, hint=hint)


def _as_path(key: str | KeyPath) -> KeyPath:
    if isinstance(key, str):
        return _split_key(key) if key else ()
    return tuple(key)


def parse_toml(text: str, path: str | Path = "<string>") -> TomlFile:
    """Parse TOML text; a syntax error becomes a ConfigError with the file and line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        position = _TOMLLIB_POSITION.search(str(exc))
        reason = _TOMLLIB_POSITION.sub("", str(exc)).strip()
        raise ConfigError(
            f"this is not valid TOML: {reason}",
            file=path,
            line=int(position.group(1)) if position else None,
            hint="check quotes, brackets and `key = value` syntax on that line",
        ) from None
    return TomlFile(path=Path(path), data=data, lines=_scan_lines(text))


def load_toml(path: str | Path) -> TomlFile:
    """Read and parse a TOML file; a missing or unreadable file is a ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "file not found", file=path, hint="check the path, or copy the example file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file: {exc.__class__.__name__}", file=path) from None
    return parse_toml(text, path)


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates that look like ``name``, best first, for "did you mean" hints."""
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[m] for m in matches]
