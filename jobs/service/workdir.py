"""``dvsync init``: a working folder an admin can run dvsync from, without the repository.

It holds ``config.toml`` (every key of the example, commented, so the defaults apply until a line
is uncommented), a copy of the default ``mappings/`` to edit, and a ``.gitignore`` that keeps the
mirror, plans, models and secrets out of version control. ``dvsync check`` accepts it as written
against the sandbox; for a real org, set the URL and sign-in as the comments say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from core.defaults import example_config, mappings_dir
from core.errors import DvsyncError

__all__ = ["GITIGNORE", "InitReport", "commented_config", "init_workdir"]

GITIGNORE = """\
# Written by `dvsync init`: state and secrets never go into version control.
# The mirror, its plans, audit and lead-scoring models (mirror.path's folder).
/.dvsync/
*.sqlite
*.sqlite-journal
*.sqlite-wal
*.sqlite-shm
# Secrets: environment files, certificates and keys, the device-code token cache.
.env
*.env
secrets/
*.pem
*.key
*.pfx
*.p12
token_cache.json
"""

HEADER = """\
# dvsync configuration, written by `dvsync init`. Every key is commented out: its default applies
# until you uncomment the line. For the sandbox, set DVSYNC__DATAVERSE__URL, DVSYNC__AUTH__TOKEN
# and DVSYNC__WRITEBACK__SOLUTION in the environment; for your org, set [dataverse] url and [auth]
# below (docs/setup-real-org.md). Writing back needs an explicit choice: `dvsync run --no-dry-run`
# or `dry_run = false` under [writeback]; until then every run only plans.
"""

# A key line (`name = value`) or a sub-table header (`[schedule.sets.frequent]`): commented out.
# A top-level section header (`[dataverse]`) stays so an uncommented key lands in its section.
_ACTIVE_KEY = re.compile(r"^[A-Za-z_][\w.-]*\s*=")
_SUB_TABLE = re.compile(r"^\[[^\].]+\.[^\]]+\]")


def commented_config(example: str) -> str:
    """The example config with every active key (and sub-table) commented out, its comments kept."""
    lines = []
    for line in example.splitlines():
        stripped = line.strip()
        if _ACTIVE_KEY.match(stripped) or _SUB_TABLE.match(stripped):
            lines.append(f"# {line}")
        else:
            lines.append(line)
    body = "\n".join(lines)
    # Drop the example's own first line ("Copy to config.toml and edit"): this is that copy.
    body = body.split("\n", 1)[1] if body.startswith("# dvsync configuration.") else body
    return HEADER + body.rstrip("\n") + "\n"


@dataclass
class InitReport:
    """What ``dvsync init`` wrote."""

    directory: Path
    written: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"directory": str(self.directory), "written": [str(p) for p in self.written]}


def init_workdir(directory: str | Path, *, force: bool = False) -> InitReport:
    """Write ``config.toml``, ``mappings/`` and ``.gitignore`` into ``directory`` (created if needed).

    Args:
        directory: the working folder.
        force: overwrite files that exist (an edited config or mapping is otherwise never touched).

    Raises:
        DvsyncError: a file to write exists (without ``force``), or the folder cannot be written.
    """
    target = Path(directory).expanduser().resolve()
    sources = sorted(mappings_dir().glob("*.toml"))
    plan: dict[Path, str] = {
        target / "config.toml": commented_config(example_config().read_text(encoding="utf-8")),
        target / ".gitignore": GITIGNORE,
    }
    for source in sources:
        plan[target / "mappings" / source.name] = source.read_text(encoding="utf-8")
    existing = [p for p in plan if p.exists()]
    if existing and not force:
        shown = ", ".join(str(p.relative_to(target)) for p in existing[:5])
        more = f" and {len(existing) - 5} more" if len(existing) > 5 else ""
        raise DvsyncError(
            f"{target} already has {shown}{more}; nothing was written "
            "(edit those files, or `dvsync init --force` to overwrite them with the defaults)"
        )
    report = InitReport(directory=target)
    try:
        (target / "mappings").mkdir(parents=True, exist_ok=True)
        for path, text in plan.items():
            path.write_text(text, encoding="utf-8")
            report.written.append(path)
    except OSError as exc:
        raise DvsyncError(
            f"cannot write the working folder {target}: {exc.strerror or exc}; "
            "choose a folder the user running dvsync can write to"
        ) from None
    return report
